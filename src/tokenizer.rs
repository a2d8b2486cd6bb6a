//! `--tokenizer FILE`: a model's own Hugging Face `tokenizer.json`, to count the tokens of
//! replies and prompts the way the model does when the server sends no usage (and to check
//! the usage when it does). Behind the `tokenizer` cargo feature (on by default); a build
//! without it refuses the flag.

use std::fmt;
use std::path::{Path, PathBuf};

/// A loaded tokenizer, named by its file. Two are equal when they came from the same file.
pub struct Tokenizer {
    path: PathBuf,
    #[cfg(feature = "tokenizer")]
    inner: tokenizers::Tokenizer,
    /// Without the feature none can be made, and every method is unreachable.
    #[cfg(not(feature = "tokenizer"))]
    never: std::convert::Infallible,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Tokenizer({})", self.path.display())
    }
}

impl PartialEq for Tokenizer {
    fn eq(&self, other: &Tokenizer) -> bool {
        self.path == other.path
    }
}

#[cfg(feature = "tokenizer")]
impl Tokenizer {
    /// Reads `path`; the error says why it cannot be used (it names neither flag nor file).
    pub fn load(path: &Path) -> Result<Tokenizer, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
        let mut inner = tokenizers::Tokenizer::from_bytes(&text)
            .map_err(|e| format!("is not a Hugging Face tokenizer.json: {}", one_line(&e.to_string())))?;
        // A file made for a model's inputs may truncate (to 512 tokens, say) or pad: a count
        // of a whole reply or prompt must do neither.
        inner
            .with_truncation(None)
            .map_err(|e| format!("cannot have its truncation turned off: {}", one_line(&e.to_string())))?;
        inner.with_padding(None);
        Ok(Tokenizer { path: path.to_path_buf(), inner })
    }

    /// The tokens of `text`, special tokens (BOS, EOS) not added: what a model generates or
    /// reads of it, not the framing a server adds.
    pub fn count(&self, text: &str) -> u32 {
        match self.inner.encode_fast(text, false) {
            Ok(e) => e.len().min(u32::MAX as usize) as u32,
            // A tokenizer that cannot encode a text (a truncation setting that fails) counts
            // nothing rather than stop the run; the report shows the zero.
            Err(_) => 0,
        }
    }

    /// The tokens of `text` that end in each of its pieces, pieces starting at the byte
    /// offsets `starts` (ascending, the first 0): a reply's text, its events' contents
    /// concatenated. One tokenization of the whole text, so a token split across two events
    /// counts once, in the event that completes it; the counts add up to `count(text)`.
    pub fn split(&self, text: &str, starts: &[usize]) -> Vec<u32> {
        let mut per = vec![0u32; starts.len()];
        let Ok(e) = self.inner.encode(text, false) else { return per };
        if per.is_empty() {
            return per;
        }
        for &(start, end) in e.get_offsets() {
            let last_byte = end.max(start + 1) - 1;
            let piece = starts.partition_point(|s| *s <= last_byte).saturating_sub(1);
            per[piece] = per[piece].saturating_add(1);
        }
        per
    }
}

#[cfg(feature = "tokenizer")]
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(not(feature = "tokenizer"))]
impl Tokenizer {
    pub fn load(_: &Path) -> Result<Tokenizer, String> {
        Err("cannot be read: rperf was built without the `tokenizer` feature".to_string())
    }

    pub fn count(&self, _: &str) -> u32 {
        match self.never {}
    }

    pub fn split(&self, _: &str, _: &[usize]) -> Vec<u32> {
        match self.never {}
    }
}

/// Tests: a WordLevel tokenizer, one token per word of `words` (split on whitespace and
/// punctuation), anything else `[UNK]`.
#[cfg(all(test, feature = "tokenizer"))]
pub fn word_level(words: &[&str]) -> Tokenizer {
    let vocab: Vec<String> =
        std::iter::once("[UNK]").chain(words.iter().copied()).enumerate().map(|(i, w)| format!("{w:?}: {i}")).collect();
    let json = format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null, "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
        vocab.join(", ")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    Tokenizer::load(&path).unwrap()
}

#[cfg(all(test, feature = "tokenizer"))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_splits_over_pieces() {
        let t = word_level(&["tok0", "tok1", "hello"]);
        assert_eq!(t.count(" tok0 tok1 zebra, hello"), 5);
        assert_eq!(t.count(""), 0);
        // " to" + "k0 tok" + "1" : tok0 ends in the second piece, tok1 in the third.
        let text = " tok0 tok1";
        assert_eq!(t.split(text, &[0, 3, 9]), [0, 1, 1]);
        assert_eq!(t.split(text, &[0, 5]), [1, 1]);
        assert_eq!(t.split("", &[]), Vec::<u32>::new());
        assert_eq!(t.split(text, &[0]), [2]);
    }

    #[test]
    fn a_byte_level_bpe_splits_with_the_pure_rust_regex() {
        // GPT-2's pre-tokenizer (a regex with a look-ahead), then merges into whole words.
        let json = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "post_processor": null, "decoder": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "vocab": {"\u0120": 0, "t": 1, "o": 2, "k": 3, "0": 4, "1": 5, "\u0120t": 6, "\u0120to": 7, "\u0120tok": 8},
                      "merges": ["\u0120 t", "\u0120t o", "\u0120to k"]}}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, json).unwrap();
        let t = Tokenizer::load(&path).unwrap();
        // " tok", "0", " tok", "1"; split over " to" | "k0 tok1": the first " tok" ends in
        // the second piece.
        assert_eq!(t.count(" tok0 tok1"), 4);
        assert_eq!(t.split(" tok0 tok1", &[0, 3]), [0, 4]);
        assert_eq!(t.split(" tok0 tok1", &[0, 5]), [2, 2]);
    }

    #[test]
    fn bad_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Tokenizer::load(&dir.path().join("nope.json")).unwrap_err();
        assert!(missing.starts_with("cannot be read: "), "{missing}");
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"model": {"type": "Nope"}}"#).unwrap();
        let bad = Tokenizer::load(&path).unwrap_err();
        assert!(bad.starts_with("is not a Hugging Face tokenizer.json: ") && !bad.contains('\n'), "{bad}");
    }
}
