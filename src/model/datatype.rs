//! KServe v2 tensor datatypes, as named by model metadata ("FP32") and config ("TYPE_FP32").

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Bf16,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    /// Parses a metadata name (`FP32`) or a config name (`TYPE_FP32`, `TYPE_STRING`).
    pub fn parse(name: &str) -> Option<DataType> {
        use DataType::*;
        let bare = name.strip_prefix("TYPE_").unwrap_or(name);
        Some(match bare {
            "BOOL" => Bool,
            "UINT8" => Uint8,
            "UINT16" => Uint16,
            "UINT32" => Uint32,
            "UINT64" => Uint64,
            "INT8" => Int8,
            "INT16" => Int16,
            "INT32" => Int32,
            "INT64" => Int64,
            "FP16" => Fp16,
            "BF16" => Bf16,
            "FP32" => Fp32,
            "FP64" => Fp64,
            "BYTES" | "STRING" => Bytes,
            _ => return None,
        })
    }

    /// The name used on the wire (`"FP32"`, `"BYTES"`).
    pub fn name(self) -> &'static str {
        use DataType::*;
        match self {
            Bool => "BOOL",
            Uint8 => "UINT8",
            Uint16 => "UINT16",
            Uint32 => "UINT32",
            Uint64 => "UINT64",
            Int8 => "INT8",
            Int16 => "INT16",
            Int32 => "INT32",
            Int64 => "INT64",
            Fp16 => "FP16",
            Bf16 => "BF16",
            Fp32 => "FP32",
            Fp64 => "FP64",
            Bytes => "BYTES",
        }
    }

    /// Bytes per element; `None` for BYTES, whose elements carry their own length.
    pub fn size(self) -> Option<usize> {
        use DataType::*;
        match self {
            Bool | Uint8 | Int8 => Some(1),
            Uint16 | Int16 | Fp16 | Bf16 => Some(2),
            Uint32 | Int32 | Fp32 => Some(4),
            Uint64 | Int64 | Fp64 => Some(8),
            Bytes => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_parse() {
        assert_eq!(DataType::parse("FP32"), Some(DataType::Fp32));
        assert_eq!(DataType::parse("TYPE_FP32"), Some(DataType::Fp32));
        assert_eq!(DataType::parse("TYPE_STRING"), Some(DataType::Bytes));
        assert_eq!(DataType::parse("BYTES").unwrap().size(), None);
        assert_eq!(DataType::parse("BF16").unwrap().size(), Some(2));
        assert_eq!(DataType::parse("FP8"), None);
    }
}
