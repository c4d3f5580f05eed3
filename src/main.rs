//! `poindexter`: one binary, one subcommand per component.

mod cli;
mod connect;
mod dev;
mod stripe_setup;

/// mimalloc rather than glibc malloc: the proxy allocates on every request, and glibc's
/// malloc and free were about a tenth of its CPU per request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
