//! # evloop-macros: `#[evloop::main]` and `#[evloop::test]`
//!
//! Attributes that run an `async fn` on a fresh evloop event loop with `evloop::run`
//! (Python's `asyncio.run(main())`). Use them through the facade: `#[evloop::main]`,
//! `#[evloop::test]`. The generated code names the facade as `::evloop`; if you depend on it
//! under another name (or re-export it), say so with `#[evloop::main(crate = "name")]`.
//!
//! The body stays an `async fn` (nested inside the generated function), so its return type,
//! `?` and `return` mean exactly what they meant.
//!
//! ```ignore
//! // (Runs as a doc-test in the `evloop` facade, which re-exports these attributes.)
//! #[evloop::main]
//! async fn main() -> Result<(), std::io::Error> {
//!     evloop::sleep(std::time::Duration::from_millis(1)).await;
//!     Ok(())
//! }
//!
//! #[evloop::test]
//! async fn adds() {
//!     assert_eq!(evloop::spawn(async { 1 + 1 }).await.unwrap(), 2);
//! }
//! ```
//!
//! ## The layers
//!
//! ```text
//!                    evloop   the facade: run, Runner, spawn, task_group, multi
//!                   /      \         (+ evloop-macros: #[evloop::main], #[evloop::test])
//!      evloop-policy        evloop-io      net, protocol, process, signal,
//!   (current loop per        |             executor, time
//!    thread)        \        |
//!                   evloop-core           EventLoop, tasks, LoopHandle
//!                        |
//!                   evloop-reactor        readiness on `polling`, Async<T>
//! ```
//!
//! Each crate depends only on those below it: [`evloop`](https://docs.rs/evloop) ·
//! [`evloop-policy`](https://docs.rs/evloop-policy) · [`evloop-io`](https://docs.rs/evloop-io) ·
//! [`evloop-core`](https://docs.rs/evloop-core) · [`evloop-reactor`](https://docs.rs/evloop-reactor) ·
//! [`evloop-macros`](https://docs.rs/evloop-macros). Depend on the facade unless you build on one
//! layer alone (a reactor without tasks, a runtime of your own on the core).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitStr, Path, ReturnType, Type};

/// Runs `async fn main` on a new event loop with `evloop::run` (asyncio's `asyncio.run(main())`).
///
/// ```no_run
/// #[evloop::main]
/// async fn main() {
///     evloop::sleep(std::time::Duration::from_millis(10)).await;
///     println!("hello from the loop");
/// }
/// ```
///
/// What happens to an error of `evloop::run` itself (e.g. `Error::Interrupted` after Ctrl-C)
/// depends on the return type of `main`:
///
/// - `-> Result<T, E>` (any type whose last path segment is `Result`, e.g.
///   `Result<(), Box<dyn std::error::Error>>`): the error becomes `Err(E::from(error))`, so `E`
///   must implement `From<evloop::Error>`; Rust then prints it and exits with status 1.
/// - anything else (`()`, `ExitCode`, …): the error is printed to stderr as `Error: …` and the
///   process exits with status 130 for Ctrl-C, 1 otherwise.
///
/// ```no_run
/// #[evloop::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let n: u32 = "42".parse()?;
///     evloop::sleep(std::time::Duration::from_millis(n.into())).await;
///     Ok(())
/// }
/// ```
///
/// The function must be `async`, without parameters or generics:
///
/// ```compile_fail
/// #[evloop::main]
/// fn main() {} // error: the `async` keyword is missing from the function declaration
/// ```
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, attr.into(), item.into()).into()
}

/// Makes `async fn` a `#[test]` that runs on its own, fresh event loop (`evloop::run`).
///
/// The test fails if the body panics or if `evloop::run` fails; it may return a `Result`, as
/// any test. Other attributes (`#[should_panic]`, `#[ignore]`, …) are kept.
///
/// ```no_run
/// #[evloop::test]
/// async fn sleeps() {
///     let start = std::time::Instant::now();
///     evloop::sleep(std::time::Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= std::time::Duration::from_millis(5));
/// }
/// ```
///
/// ```compile_fail
/// #[evloop::test]
/// fn not_async() {} // error: the `async` keyword is missing from the function declaration
/// ```
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, attr.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr_name(self) -> &'static str {
        match self {
            Kind::Main => "#[evloop::main]",
            Kind::Test => "#[evloop::test]",
        }
    }
}

/// The expansion, on `proc_macro2` tokens (so it can be unit-tested). Errors become
/// `compile_error!`s next to the untouched item, so the rest of the crate still resolves it.
fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = e.to_compile_error();
            return quote! { #err #item };
        }
    };
    match parse_args(kind, attr).and_then(|krate| generate(kind, &krate, func)) {
        Ok(tokens) => tokens,
        Err(e) => {
            let err = e.to_compile_error();
            quote! { #err #item }
        }
    }
}

/// The attribute's arguments: nothing, or `crate = "path"`.
fn parse_args(kind: Kind, attr: TokenStream2) -> syn::Result<Path> {
    let mut krate: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse()?;
            krate = Some(lit.parse()?);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument to {}; the only one is `crate = \"path\"`",
                kind.attr_name()
            )))
        }
    });
    parser.parse2(attr)?;
    Ok(krate.unwrap_or_else(|| {
        let mut path: Path = Ident::new("evloop", Span::call_site()).into();
        path.leading_colon = Some(Default::default());
        path
    }))
}

/// True for `Result<..>`, `io::Result<..>`, `std::result::Result<..>`…
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn generate(kind: Kind, krate: &Path, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "the `async` keyword is missing from the function declaration ({} runs an `async fn`)",
                kind.attr_name()
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!("{} functions cannot take parameters", kind.attr_name()),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("{} functions cannot be generic", kind.attr_name()),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "variadic functions are not supported",
        ));
    }
    if kind == Kind::Test {
        if let Some(dup) = func.attrs.iter().find(|a| a.path().is_ident("test")) {
            return Err(syn::Error::new_spanned(
                dup,
                "#[evloop::test] already makes this a test: remove the second test attribute",
            ));
        }
    }

    let attrs = &func.attrs;
    let vis = &func.vis;
    let name = &sig.ident;
    let output = &sig.output;
    let block = &func.block;
    let span = block.span();
    // The body keeps its own `async fn`, so `?`, `return` and the output type are unchanged.
    let inner = Ident::new(&format!("__evloop_{name}_body"), name.span());
    let inner_fn = quote_spanned! {span=>
        async fn #inner() #output #block
    };

    let run = match kind {
        Kind::Test => quote_spanned! {span=>
            match #krate::run(#inner()) {
                ::core::result::Result::Ok(output) => output,
                ::core::result::Result::Err(error) => {
                    ::core::panic!("evloop::run failed: {}", error)
                }
            }
        },
        Kind::Main if returns_result(output) => quote_spanned! {span=>
            match #krate::run(#inner()) {
                ::core::result::Result::Ok(output) => output,
                ::core::result::Result::Err(error) => {
                    ::core::result::Result::Err(::core::convert::From::from(error))
                }
            }
        },
        Kind::Main => quote_spanned! {span=>
            match #krate::run(#inner()) {
                ::core::result::Result::Ok(output) => output,
                ::core::result::Result::Err(error) => {
                    ::std::eprintln!("Error: {}", error);
                    let code = if ::core::matches!(error, #krate::Error::Interrupted) { 130 } else { 1 };
                    ::std::process::exit(code)
                }
            }
        },
    };
    let test_attr = match kind {
        Kind::Test => quote! { #[::core::prelude::v1::test] },
        Kind::Main => quote! {},
    };
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis fn #name() #output {
            #inner_fn
            #run
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{Kind, TokenStream2, expand};

    fn expand_str(kind: Kind, attr: &str, item: &str) -> String {
        let attr: TokenStream2 = attr.parse().expect("attr tokens");
        let item: TokenStream2 = item.parse().expect("item tokens");
        expand(kind, attr, item).to_string()
    }

    #[test]
    fn main_wraps_the_body_in_run() {
        let out = expand_str(Kind::Main, "", "async fn main() { work().await }");
        assert!(out.contains("fn main ()"), "{out}");
        assert!(out.contains("async fn __evloop_main_body ()"), "{out}");
        assert!(
            out.contains(":: evloop :: run (__evloop_main_body ())"),
            "{out}"
        );
        assert!(out.contains("process :: exit"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn main_returning_result_converts_the_run_error() {
        let out = expand_str(
            Kind::Main,
            "",
            "async fn main() -> Result<(), MyError> { Ok(()) }",
        );
        assert!(out.contains("From :: from (error)"), "{out}");
        assert!(!out.contains("process :: exit"), "{out}");
        let out = expand_str(
            Kind::Main,
            "",
            "async fn main() -> std::io::Result<()> { Ok(()) }",
        );
        assert!(out.contains("From :: from (error)"), "{out}");
    }

    #[test]
    fn test_adds_the_test_attribute_and_keeps_others() {
        let out = expand_str(
            Kind::Test,
            "",
            "#[should_panic] async fn it_works() { assert!(true) }",
        );
        assert!(
            out.starts_with("# [:: core :: prelude :: v1 :: test]"),
            "{out}"
        );
        assert!(out.contains("# [should_panic]"), "{out}");
        assert!(out.contains("fn it_works ()"), "{out}");
    }

    #[test]
    fn crate_argument_renames_the_facade() {
        let out = expand_str(Kind::Main, "crate = \"my::rt\"", "async fn main() {}");
        assert!(out.contains("my :: rt :: run"), "{out}");
        assert!(!out.contains(":: evloop ::"), "{out}");
    }

    #[test]
    fn errors() {
        let cases = [
            (
                Kind::Main,
                "",
                "fn main() {}",
                "the `async` keyword is missing",
            ),
            (
                Kind::Test,
                "",
                "fn t() {}",
                "the `async` keyword is missing",
            ),
            (
                Kind::Test,
                "",
                "async fn t(x: u8) {}",
                "cannot take parameters",
            ),
            (Kind::Main, "", "async fn main<T>() {}", "cannot be generic"),
            (
                Kind::Test,
                "",
                "#[test] async fn t() {}",
                "remove the second test attribute",
            ),
            (
                Kind::Main,
                "flavor = \"x\"",
                "async fn main() {}",
                "unknown argument",
            ),
            (Kind::Main, "", "struct NotAFn;", "expected `fn`"),
        ];
        for (kind, attr, item, message) in cases {
            let out = expand_str(kind, attr, item);
            assert!(out.contains("compile_error"), "{item}: {out}");
            assert!(out.contains(message), "{item}: {out}");
        }
    }
}
