//! One module per command, each with its arguments (`#[derive(Args)]`) and its `run`.
//! Commands still in `main.rs` move here one by one.

pub mod profile;
