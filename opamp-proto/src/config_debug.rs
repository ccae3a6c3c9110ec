//! Hand-written `Debug` for [`AgentConfigFile`].
//!
//! Configuration bodies often carry credentials, so the derived `Debug` is
//! disabled for this message (prost-build `skip_debug`) and replaced by one
//! that shows only the body length and the content type.

use std::fmt;

use crate::generated::AgentConfigFile;

impl fmt::Debug for AgentConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfigFile")
            .field("body_len", &self.body.len())
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_body() {
        let file = AgentConfigFile {
            body: bytes::Bytes::from_static(b"password: hunter2\n"),
            content_type: "text/yaml".into(),
        };
        let shown = format!("{file:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("password"), "{shown}");
        assert!(shown.contains("body_len: 18"), "{shown}");
        assert!(shown.contains("text/yaml"), "{shown}");
        // Also when nested in a derived Debug, and with {:#?}.
        let map = crate::AgentConfigMap {
            config_map: [(String::new(), file)].into(),
        };
        let nested = format!("{map:#?}");
        assert!(!nested.contains("hunter2"), "{nested}");
    }
}
