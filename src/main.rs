//! `poindexter`: one binary, one subcommand per component.

mod cli;
mod dev;
mod stripe_setup;

fn main() -> std::process::ExitCode {
    cli::main()
}
