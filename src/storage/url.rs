//! `s3://bucket/prefix` and `gs://bucket/prefix`, as TensorFlow and TF Serving write them.

use super::Error;

/// Which object store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gcs,
}

impl Scheme {
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::S3 => "s3://",
            Scheme::Gcs => "gs://",
        }
    }
}

/// A bucket and a key prefix (no leading or trailing `/`; empty for the whole bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub scheme: Scheme,
    pub bucket: String,
    pub prefix: String,
}

impl RemoteUrl {
    /// `None` when `text` is not an object-storage URL at all (a local path); an error when it
    /// is one but malformed.
    pub fn parse(text: &str) -> Option<Result<RemoteUrl, Error>> {
        let (scheme, rest) = [Scheme::S3, Scheme::Gcs]
            .into_iter()
            .find_map(|s| Some((s, text.strip_prefix(s.prefix())?)))?;
        let bad = |reason: &str| Error::BadUrl {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(bad(&format!(
                "it names no bucket; write {}BUCKET/PREFIX",
                scheme.prefix()
            ))));
        }
        // The rules both S3 and GCS apply to bucket names: lower-case letters, digits, `-`,
        // `.` (and `_` on GCS), 3 to 63 characters (GCS allows up to 222 with dots).
        let valid_char = |c: char| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_'
        };
        if bucket.len() < 3 || bucket.len() > 222 || !bucket.chars().all(valid_char) {
            return Some(Err(bad(&format!(
                "'{bucket}' is not a bucket name (3 to 63 lower-case letters, digits, '-', '.')"
            ))));
        }
        let prefix = prefix.trim_matches('/');
        for part in prefix.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Some(Err(bad("its prefix contains '.' or '..'")));
            }
        }
        if prefix.contains("//") {
            return Some(Err(bad("its prefix contains an empty path segment ('//')")));
        }
        Some(Ok(RemoteUrl {
            scheme,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }

    /// The URL of `rel` (a `/`-separated path) under this one.
    pub fn join(&self, rel: &str) -> RemoteUrl {
        let rel = rel.trim_matches('/');
        let prefix = match (self.prefix.is_empty(), rel.is_empty()) {
            (_, true) => self.prefix.clone(),
            (true, false) => rel.to_owned(),
            (false, false) => format!("{}/{rel}", self.prefix),
        };
        RemoteUrl {
            scheme: self.scheme,
            bucket: self.bucket.clone(),
            prefix,
        }
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.scheme.prefix(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (text, want) in [
            (
                "s3://models/digits",
                Some(Ok((Scheme::S3, "models", "digits"))),
            ),
            (
                "s3://models/digits/1/",
                Some(Ok((Scheme::S3, "models", "digits/1"))),
            ),
            ("gs://my-bucket", Some(Ok((Scheme::Gcs, "my-bucket", "")))),
            (
                "gs://my_bucket/a/b",
                Some(Ok((Scheme::Gcs, "my_bucket", "a/b"))),
            ),
            ("models/digits", None),
            ("/s3://x", None),
            ("s3:/models", None),
            ("s3://", Some(Err("names no bucket"))),
            ("s3:///x", Some(Err("names no bucket"))),
            ("s3://Models/x", Some(Err("not a bucket name"))),
            ("s3://ab/x", Some(Err("not a bucket name"))),
            ("s3://models/a/../b", Some(Err("'..'"))),
            ("s3://models/a//b", Some(Err("empty path segment"))),
        ] {
            let got = RemoteUrl::parse(text);
            match (got, want) {
                (None, None) => {}
                (Some(Ok(url)), Some(Ok((scheme, bucket, prefix)))) => {
                    assert_eq!(
                        (url.scheme, url.bucket.as_str(), url.prefix.as_str()),
                        (scheme, bucket, prefix),
                        "{text}"
                    );
                }
                (Some(Err(e)), Some(Err(word))) => {
                    let msg = e.to_string();
                    assert!(msg.contains(word) && msg.contains(text), "{text}: {msg}");
                }
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn display_and_join() {
        let url = RemoteUrl::parse("s3://models/digits/").unwrap().unwrap();
        assert_eq!(url.to_string(), "s3://models/digits");
        assert_eq!(
            url.join("3/saved_model.pb").to_string(),
            "s3://models/digits/3/saved_model.pb"
        );
        let root = RemoteUrl::parse("gs://models").unwrap().unwrap();
        assert_eq!(root.join("a").to_string(), "gs://models/a");
        assert_eq!(root.join("").to_string(), "gs://models");
    }
}
