//! One event or reply of a generative endpoint, decoded into only what rperf reads: the
//! content, the usage and an error. Typed and borrowing (no map per event, no copy of a
//! string without escapes): this is the streamed path's hot loop.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::config::EndpointKind;

#[derive(Deserialize, Default)]
struct Reply<'a> {
    #[serde(borrow, default)]
    choices: Option<Choices<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    text_output: Option<Text<'a>>,
    #[serde(borrow, default)]
    error: Option<ErrorField<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Message<'a>>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// A chat choice's content: the delta's (streams) or the message's, else its reasoning.
fn chat<'a>(delta: Option<Message<'a>>, message: Option<Message<'a>>) -> Option<Cow<'a, str>> {
    let m = delta.or(message)?;
    nonempty(m.content).or(nonempty(m.reasoning_content))
}

/// What rperf reads of `choices`: the first non-empty content of each shape, read as the
/// array goes by (no vector of choices per event).
#[derive(Default)]
struct Choices<'a> {
    chat: Option<Cow<'a, str>>,
    text: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Choices<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Choices<'a>, S::Error> {
                let mut found = Choices::default();
                while let Some(Choice { delta, message, text }) = seq.next_element::<Choice<'a>>()? {
                    if found.text.is_none() {
                        found.text = nonempty(text);
                    }
                    if found.chat.is_none() {
                        found.chat = chat(delta, message);
                    }
                }
                Ok(found)
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// A text field as servers send it: a string, or strings (a BYTES output of several).
#[derive(Deserialize)]
#[serde(untagged)]
enum Text<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(Vec<String>),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Object { message: Option<String> },
    Other(IgnoredAny),
}

/// What rperf reads of an event or a reply.
#[derive(Debug, Default, PartialEq)]
pub struct Read<'a> {
    /// Non-empty content.
    pub content: Option<Cow<'a, str>>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// The server's error message, when the event or reply is an error.
    pub error: Option<String>,
}

fn nonempty(t: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    t.filter(|s| !s.is_empty())
}

fn count(n: Option<u64>) -> Option<u32> {
    n.map(|n| n.min(u32::MAX as u64) as u32)
}

/// Decodes `json` for an endpoint of `kind`; an error when it is not JSON at all.
pub fn read(kind: EndpointKind, json: &str) -> Result<Read<'_>, String> {
    if kind == EndpointKind::Json {
        return Ok(Read { content: Some(Cow::Borrowed("")), ..Read::default() });
    }
    let reply: Reply = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let error = match reply.error {
        Some(ErrorField::Text(t)) => Some(t.into_owned()),
        Some(ErrorField::Object { message }) => Some(message.unwrap_or_else(|| "an error event".to_string())),
        Some(ErrorField::Other(_)) => Some("an error event".to_string()),
        None => None,
    };
    let usage = reply.usage.as_ref();
    let content = match kind {
        EndpointKind::Chat => reply.choices.and_then(|c| c.chat),
        EndpointKind::Completions => reply.choices.and_then(|c| c.text),
        EndpointKind::Generate => match reply.text_output {
            Some(Text::One(t)) => nonempty(Some(t)),
            Some(Text::Many(ts)) => nonempty(Some(Cow::Owned(ts.concat()))),
            _ => None,
        },
        EndpointKind::Embeddings | EndpointKind::Json => None,
    };
    Ok(Read {
        content,
        prompt_tokens: count(usage.and_then(|u| u.prompt_tokens)),
        completion_tokens: count(usage.and_then(|u| u.completion_tokens)),
        error,
    })
}

/// A JSON line of a plain streaming API: only an object's `error` is read.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    error: Option<ErrorField<'a>>,
}

/// Checks one line of a plain JSON stream: the server's error message when it is an
/// `{"error": ...}` object; an error when it is not JSON at all. Nothing is kept (no
/// allocation for a line without an error).
pub fn read_line(json: &str) -> Result<Option<String>, String> {
    if !json.trim_start().starts_with('{') {
        serde_json::from_str::<IgnoredAny>(json).map_err(|e| e.to_string())?;
        return Ok(None);
    }
    let line: Line = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(match line.error {
        Some(ErrorField::Text(t)) => Some(t.into_owned()),
        Some(ErrorField::Object { message }) => Some(message.unwrap_or_else(|| "an error line".to_string())),
        Some(ErrorField::Other(_)) => Some("an error line".to_string()),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_checked_and_their_errors_read() {
        assert_eq!(read_line(r#"{"output": " tok1", "n": [1, {"a": null}]}"#), Ok(None));
        assert_eq!(read_line(r#""a bare string""#), Ok(None));
        assert_eq!(read_line(r#"{"error": "boom", "output": 1}"#), Ok(Some("boom".into())));
        assert_eq!(read_line(r#"{"error": {"message": "bad"}}"#), Ok(Some("bad".into())));
        assert_eq!(read_line(r#"{"error": null}"#), Ok(None));
        assert!(read_line(r#"{"output": "#).is_err());
        assert!(read_line("tok").is_err());
    }

    #[test]
    fn what_is_read_of_each_shape() {
        let chat =
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":" tok","role":null},"logprobs":null}],"usage":null}"#;
        assert_eq!(read(EndpointKind::Chat, chat).unwrap().content.as_deref(), Some(" tok"));
        let role_only = r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        assert_eq!(read(EndpointKind::Chat, role_only).unwrap().content, None);
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":null}}"#;
        let r = read(EndpointKind::Chat, usage).unwrap();
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(5), Some(2)));
        assert_eq!(
            read(EndpointKind::Completions, r#"{"choices":[{"text":"a"}]}"#).unwrap().content.as_deref(),
            Some("a")
        );
        let triton = r#"{"model_name":"m","model_version":"1","text_output":"x\"y"}"#;
        assert_eq!(read(EndpointKind::Generate, triton).unwrap().content.as_deref(), Some("x\"y"));
        let many = r#"{"text_output":["a","b"]}"#;
        assert_eq!(read(EndpointKind::Generate, many).unwrap().content.as_deref(), Some("ab"));
        assert_eq!(read(EndpointKind::Generate, r#"{"text_output":3}"#).unwrap().content, None);
        // The first choice with content, of the endpoint's shape, whatever comes before it.
        let later = r#"{"choices":[{"delta":{"content":""}},{"text":"t"},{"delta":{"reasoning_content":"r"}},{"delta":{"content":"c"}}]}"#;
        assert_eq!(read(EndpointKind::Chat, later).unwrap().content.as_deref(), Some("r"));
        assert_eq!(read(EndpointKind::Completions, later).unwrap().content.as_deref(), Some("t"));
        assert_eq!(read(EndpointKind::Chat, r#"{"choices":null}"#).unwrap().content, None);
    }

    #[test]
    fn errors_in_every_shape() {
        assert_eq!(read(EndpointKind::Generate, r#"{"error":"boom"}"#).unwrap().error.as_deref(), Some("boom"));
        let openai = r#"{"error": {"message": "Internal Server Error", "type": "internal"}}"#;
        assert_eq!(read(EndpointKind::Chat, openai).unwrap().error.as_deref(), Some("Internal Server Error"));
        assert_eq!(read(EndpointKind::Chat, r#"{"error":null,"choices":[]}"#).unwrap().error, None);
        assert!(read(EndpointKind::Chat, "{oops").is_err());
        assert!(read(EndpointKind::Chat, r#"{"choices": 3}"#).is_err());
    }
}
