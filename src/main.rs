//! The `kafka-producer` binary: parse the command line, run it, print any error as one
//! line, exit with its documented code. All Kafka logic is in the library.

mod cli;

/// Events are allocated by the sending task and freed by the partition workers on
/// other threads; mimalloc keeps that cheap where glibc and musl malloc do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kafka_producer::memory::tune_for_mimalloc();
    let args = cli::parse();
    cli::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(cli::run(args)) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(error) => {
            eprintln!("Error: {error}");
            std::process::ExitCode::from(error.code as u8)
        }
    }
}
