//! The `kafka-producer` binary: parse the command line, run it, print any error as one
//! line, exit with its documented code. All Kafka logic is in the library.

mod cli;

/// Events are allocated by the sending task and freed by the partition workers on
/// other threads; mimalloc keeps that cheap where glibc and musl malloc do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kafka_producer::memory::tune_for_mimalloc();
    // SAFETY: first thing in main, before the runtime starts any thread.
    unsafe { cli::options::read_renamed_variables() };
    let args = cli::parse();
    let log_format = args.log_format;
    cli::init_tracing(log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(cli::run(args)) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(error) => {
            match log_format {
                cli::LogFormat::Text => eprintln!("Error: {error}"),
                // A log collector reads stderr as JSON lines: the error is one too.
                cli::LogFormat::Json => {
                    tracing::error!(exit_code = error.code as u8, "{error}")
                }
            }
            std::process::ExitCode::from(error.code as u8)
        }
    }
}
