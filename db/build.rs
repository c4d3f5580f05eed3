// `sqlx::migrate!` embeds the migrations at compile time, but cargo only rebuilds a crate
// when its own sources change: without this, a new migration file would be missed by a
// cached build.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
