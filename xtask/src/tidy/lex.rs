//! A line-oriented Rust lexer just good enough for tidy: it splits every line into its
//! code (string and char literal contents blanked) and its comment text.

/// One source line: the code on it and the text of the comments on it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The code, with the contents of string and char literals removed (the quotes stay).
    pub(crate) code: String,
    /// Every comment on the line (line, doc and block comments), concatenated.
    pub(crate) comment: String,
}

#[derive(Clone, Copy)]
enum State {
    Code,
    /// Inside `/* */`, nested this deep.
    Block(u32),
    /// Inside `"..."`.
    Str,
    /// Inside `r#.."..."#..` with this many `#`.
    Raw(usize),
}

/// Lexes `src` into lines.
pub(crate) fn lex(src: &str) -> Vec<Line> {
    let mut state = State::Code;
    let mut out = Vec::new();
    for text in src.lines() {
        let mut line = Line::default();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match state {
                State::Block(depth) => {
                    if c == '*' && next == Some('/') {
                        i += 2;
                        state = if depth == 1 {
                            State::Code
                        } else {
                            State::Block(depth - 1)
                        };
                        continue;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(depth + 1);
                        i += 2;
                        continue;
                    }
                    line.comment.push(c);
                }
                State::Str => {
                    if c == '\\' {
                        i += 2;
                        continue;
                    }
                    if c == '"' {
                        line.code.push('"');
                        state = State::Code;
                    }
                }
                State::Raw(hashes) => {
                    if c == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes
                    {
                        line.code.push('"');
                        i += 1 + hashes;
                        state = State::Code;
                        continue;
                    }
                }
                State::Code => {
                    if c == '/' && next == Some('/') {
                        line.comment.extend(&chars[i..]);
                        break;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(1);
                        i += 2;
                        continue;
                    }
                    if c == '"' {
                        line.code.push('"');
                        state = State::Str;
                    } else if let Some(hashes) = raw_string_start(&chars, i) {
                        line.code.push('"');
                        i += 2 + hashes; // `r`, the hashes, the quote
                        state = State::Raw(hashes);
                        continue;
                    } else if c == '\'' {
                        if let Some(len) = char_literal_len(&chars[i..]) {
                            line.code.push_str("' '");
                            i += len;
                            continue;
                        }
                        line.code.push(c); // a lifetime or label
                    } else {
                        line.code.push(c);
                    }
                }
            }
            i += 1;
        }
        out.push(line);
    }
    out
}

/// At `chars[i] == 'r'` opening a raw string (`r"`, `r#"`, also after `b`/`c`), the
/// number of `#`s.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if chars[i] != 'r' {
        return None;
    }
    let prev = i.checked_sub(1).map(|p| chars[p]);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    match prev {
        Some('b' | 'c') => {
            let before = i.checked_sub(2).map(|p| chars[p]);
            if before.is_some_and(ident) {
                return None;
            }
        }
        Some(p) if ident(p) => return None,
        _ => {}
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// The length of the char literal starting at `chars[0] == '\''`, or `None` for a lifetime.
fn char_literal_len(chars: &[char]) -> Option<usize> {
    match chars.get(1)? {
        '\\' => {
            let close = chars[2..].iter().position(|&c| c == '\'')?;
            Some(close + 3)
        }
        _ => (chars.get(2) == Some(&'\'')).then_some(3),
    }
}
