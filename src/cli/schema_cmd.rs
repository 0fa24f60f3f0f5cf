//! `schema`: the compiled-in `.proto`, a wire-compatibility check of a proposed version,
//! and the Kubernetes ConfigMap that the original `make sync` made with kubectl.

use clap::Subcommand;
use kafka_producer::schema::{self, Severity};

use super::{CliError, ExitCode};

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print the compiled-in proto/user_event.proto.
    Show,
    /// Report wire-incompatible changes of FILE against the compiled-in schema (exit 1 if any).
    Check {
        /// The proposed .proto file.
        file: std::path::PathBuf,
    },
    /// Print a ConfigMap with the proto file(s), as `kubectl create configmap --from-file=proto/ --dry-run=client -o yaml`.
    Configmap {
        /// ConfigMap name (a DNS-1123 subdomain).
        #[arg(long, default_value = schema::CONFIGMAP_NAME)]
        name: String,
        /// Namespace to put in the metadata (a DNS-1123 label).
        #[arg(long)]
        namespace: Option<String>,
    },
}

pub fn run(command: SchemaCommand) -> Result<ExitCode, CliError> {
    match command {
        SchemaCommand::Show => {
            print!("{}", schema::USER_EVENT_PROTO);
            Ok(ExitCode::Success)
        }
        SchemaCommand::Check { file } => {
            let proposed = std::fs::read_to_string(&file)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
            let findings = schema::check(&proposed).map_err(|e| CliError {
                code: ExitCode::Failures,
                message: format!("{}: {e}", file.display()),
            })?;
            let mut breaking = 0;
            for finding in &findings {
                if finding.kind == Severity::Breaking {
                    breaking += 1;
                }
                println!("{finding}");
            }
            if breaking == 0 {
                println!("{}: compatible with the compiled-in schema", file.display());
                Ok(ExitCode::Success)
            } else {
                println!("{}: {breaking} breaking change(s)", file.display());
                Ok(ExitCode::Failures)
            }
        }
        SchemaCommand::Configmap { name, namespace } => {
            let yaml = schema::configmap(&name, namespace.as_deref())
                .map_err(|e| CliError::usage(format!("invalid value for --{}: {e}", e.field)))?;
            print!("{yaml}");
            Ok(ExitCode::Success)
        }
    }
}
