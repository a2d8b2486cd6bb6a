//! The input-data flags: where tensors come from, variable shapes and generated strings.

use std::collections::BTreeMap;

use super::values::parse_shape;
use super::{parse_err, DataSource, InputOptions};
use crate::cli::Args;
use crate::error::Error;

/// `--input-data` (zero, random or a path, told apart when read), `--data-directory`, `-z`.
pub fn sources(a: &Args) -> Result<Vec<DataSource>, Error> {
    let mut out: Vec<DataSource> = a
        .input_data
        .iter()
        .map(|d| match d.as_str() {
            "zero" => DataSource::Zero,
            "random" => DataSource::Random,
            _ => DataSource::Path(d.into()),
        })
        .collect();
    out.extend(a.data_directory.iter().map(|d| DataSource::Path(d.into())));
    if a.zero_input {
        if out.iter().any(|s| matches!(s, DataSource::Path(_))) {
            return Err(Error::Usage("The -z flag cannot be set when --data-directory is provided.".into()));
        }
        out.push(DataSource::Zero);
    }
    Ok(out)
}

pub fn options(a: &Args, data: Vec<DataSource>) -> Result<InputOptions, Error> {
    if a.string_length <= 0 {
        return Err(parse_err("--string-length", "The value must be > 0."));
    }
    let mut shapes = BTreeMap::new();
    for s in &a.shape {
        let (name, dims) = parse_shape(s)?;
        shapes.insert(name, dims);
    }
    Ok(InputOptions { data, shapes, string_length: a.string_length as usize, string_data: a.string_data.clone() })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, usage_msg};
    use super::*;

    #[test]
    fn sources_and_shapes() {
        let c = config(&["-m", "a", "--input-data", "zero", "--input-data", "d.json", "--shape", "ns:in:2,3"]).unwrap();
        assert_eq!(c.input.data, vec![DataSource::Zero, DataSource::Path("d.json".into())]);
        assert_eq!(c.input.shapes["ns:in"], vec![2, 3]);
        assert!(usage_msg(&["-m", "a", "-z", "--data-directory", "x"]).contains("The -z flag cannot be set"));
        assert!(usage_msg(&["-m", "a", "--string-length", "0"]).contains("--string-length"));
    }
}
