//! How a run fits a KServe v2 server that lacks some of Triton's extensions (KServe's
//! ModelServer, MLServer, `rperf serve --plain-kserve`): the flags that need a missing
//! extension are refused before any load, and what rperf leaves out is said in the settings.

use crate::client::ServerInfo;
use crate::config::{Config, Protocol, ServerOptions, TensorFormat};
use crate::error::Error;

/// The server options adapted to the server, and what was left out.
pub struct Fit {
    pub server: ServerOptions,
    pub left_out: Vec<String>,
}

/// "mlserver 1.7.1, extensions: none"
pub fn describe(info: &ServerInfo) -> String {
    let name = if info.name.is_empty() { "the server" } else { &info.name };
    let version = if info.version.is_empty() { String::new() } else { format!(" {}", info.version) };
    let extensions = if info.extensions.is_empty() { "none".to_string() } else { info.extensions.join(", ") };
    format!("{name}{version}, extensions: {extensions}")
}

/// Refuses the flags the server cannot honour, and adapts the tensor formats.
pub fn fit(config: &Config, info: &ServerInfo) -> Result<Fit, Error> {
    let lacks = |extension: &str| -> Option<String> {
        (!info.has(extension)).then(|| format!("it needs the server's '{extension}' extension ({})", describe(info)))
    };
    if !config.server.request_parameters.is_empty() {
        if let Some(why) = lacks("parameters") {
            return Err(Error::Model(format!("--request-parameter cannot be used: {why}")));
        }
    }
    if let Some(flag) = config.load.sequence_flags.first() {
        if let Some(why) = lacks("sequence") {
            return Err(Error::Model(format!("{flag} cannot be used: {why}")));
        }
    }
    let mut server = config.server.clone();
    let mut left_out = Vec::new();
    // The binary tensor extension is HTTP's; gRPC always carries raw tensor bytes.
    if server.protocol == Protocol::Http && !info.has("binary_tensor_data") {
        let (input_given, output_given) = server.formats_given;
        if !input_given {
            server.input_format = TensorFormat::Json;
        }
        if !output_given {
            server.output_format = TensorFormat::Json;
        }
        if !input_given || !output_given {
            left_out.push("binary tensor data (no binary_tensor_data extension): JSON tensors".to_string());
        }
    }
    Ok(Fit { server, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(flags: &[&str]) -> Config {
        let args = crate::cli::Args::try_parse_from([&["rperf", "-m", "m"][..], flags].concat()).unwrap();
        Config::from_args(&args).unwrap().0
    }

    fn server(extensions: &[&str]) -> ServerInfo {
        ServerInfo {
            name: "mlserver".into(),
            version: "1.7.1".into(),
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_plain_server_gets_json_tensors_unless_binary_is_asked_for() {
        let f = fit(&config(&[]), &server(&[])).unwrap();
        assert_eq!((f.server.input_format, f.server.output_format), (TensorFormat::Json, TensorFormat::Json));
        assert!(f.left_out[0].contains("binary_tensor_data"), "{:?}", f.left_out);
        let f = fit(&config(&["--input-tensor-format", "binary"]), &server(&[])).unwrap();
        assert_eq!((f.server.input_format, f.server.output_format), (TensorFormat::Binary, TensorFormat::Json));
        let both = ["--input-tensor-format", "binary", "--output-tensor-format", "binary"];
        assert!(fit(&config(&both), &server(&[])).unwrap().left_out.is_empty());
        let f = fit(&config(&[]), &server(&["binary_tensor_data"])).unwrap();
        assert_eq!(f.server.input_format, TensorFormat::Binary);
        let f = fit(&config(&["-i", "grpc"]), &server(&[])).unwrap();
        assert!(f.left_out.is_empty(), "gRPC has no binary extension to miss");
    }

    #[test]
    fn flags_that_need_a_missing_extension_are_refused_by_name() {
        let e = fit(&config(&["--request-parameter", "n:1:int"]), &server(&[])).err().unwrap().to_string();
        assert!(e.contains("--request-parameter") && e.contains("'parameters'") && e.contains("mlserver 1.7.1"), "{e}");
        let e = fit(&config(&["--sequence-length", "4"]), &server(&[])).err().unwrap().to_string();
        assert!(e.contains("--sequence-length") && e.contains("'sequence'"), "{e}");
        assert!(fit(&config(&["--sequence-length", "4"]), &server(&["sequence"])).is_ok());
    }
}
