//! 200 concurrent clients × 50 round trips, every byte checked, against a task-per-connection
//! echo server and a Protocol echo server, all on one loop.

mod netutil;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use evloop::net::{TcpListener, TcpStream};
use evloop::protocol::{self, Protocol, Transport};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use netutil::{chunk, run};

const CLIENTS: usize = 200;
const ROUNDS: usize = 50;

/// Echo with a task per connection.
async fn task_server(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        evloop::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok(());
                }
                stream.write_all(&buf[..n]).await?;
            }
        });
    }
}

/// Echo as a protocol; counts connections made and lost.
struct Echo {
    transport: Option<Transport>,
    lost: Rc<Cell<usize>>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        assert!(err.is_none(), "clean close expected, got {err:?}");
        self.lost.set(self.lost.get() + 1);
    }
}

/// One client: `ROUNDS` messages of varying size, each echo checked byte for byte.
async fn client(addr: SocketAddr, id: usize) -> io::Result<usize> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut back = vec![0u8; 8 * 1024];
    let mut bytes = 0;
    for round in 0..ROUNDS {
        let len = 1 + (id * 131 + round * 977) % 5000;
        let msg = chunk((id * ROUNDS + round) as u64, len);
        stream.write_all(&msg).await?;
        stream.read_exact(&mut back[..len]).await?;
        assert_eq!(
            &back[..len],
            &msg[..],
            "client {id} round {round}: echo differs"
        );
        bytes += len;
    }
    stream.close().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    assert!(rest.is_empty());
    Ok(bytes)
}

#[test]
fn two_hundred_clients_against_both_servers_on_one_loop() -> io::Result<()> {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let task_addr = listener.local_addr()?;
        let task_srv = evloop::spawn(task_server(listener));

        let lost = Rc::new(Cell::new(0));
        let l = lost.clone();
        let server = protocol::create_server(
            move || Echo {
                transport: None,
                lost: l.clone(),
            },
            "127.0.0.1:0",
        )
        .await?;
        let proto_addr = server.local_addr()?;

        let mut clients = Vec::new();
        for id in 0..CLIENTS {
            clients.push(evloop::spawn(client(task_addr, id)));
            clients.push(evloop::spawn(client(proto_addr, id)));
        }
        let results = evloop::gather(clients).await;
        let mut total = 0;
        for r in results {
            total += r.expect("client task")?;
        }
        assert!(total > 0);

        // Every protocol connection has been closed cleanly by now or shortly.
        server.close();
        server.wait_closed().await;
        assert_eq!(lost.get(), CLIENTS);
        assert_eq!(server.active_connections(), 0);
        task_srv.cancel();
        Ok(())
    })
}
