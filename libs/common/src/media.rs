//! What an uploaded file really is, from its first bytes (magic numbers),
//! whatever name or Content-Type the client gave.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Audio,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Audio => "audio",
        }
    }
}

/// The kind and MIME type, or `None` for anything not accepted (documents,
/// executables, HTML, SVG with its scripts, video...).
pub fn sniff(b: &[u8]) -> Option<(Kind, &'static str)> {
    let starts = |magic: &[u8]| b.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| {
        b.len() >= offset + magic.len() && &b[offset..offset + magic.len()] == magic
    };
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some((Kind::Image, "image/jpeg"));
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some((Kind::Image, "image/png"));
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some((Kind::Image, "image/gif"));
    }
    if starts(b"RIFF") && at(8, b"WEBP") {
        return Some((Kind::Image, "image/webp"));
    }
    if at(4, b"ftyp") && (at(8, b"heic") || at(8, b"heix") || at(8, b"mif1")) {
        return Some((Kind::Image, "image/heic"));
    }
    if starts(b"RIFF") && at(8, b"WAVE") {
        return Some((Kind::Audio, "audio/wav"));
    }
    if starts(b"#!AMR") {
        return Some((Kind::Audio, "audio/amr"));
    }
    if starts(b"OggS") {
        return Some((Kind::Audio, "audio/ogg"));
    }
    if starts(b"ID3")
        || (b.len() >= 2 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0 && (b[1] & 0x06) != 0)
    {
        return Some((Kind::Audio, "audio/mpeg"));
    }
    if at(4, b"ftyp") && (at(8, b"M4A ") || at(8, b"M4B ")) {
        return Some((Kind::Audio, "audio/mp4"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content_not_by_name() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some((Kind::Image, "image/jpeg"))
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n...."),
            Some((Kind::Image, "image/png"))
        );
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some((Kind::Image, "image/webp"))
        );
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WAVEfmt "),
            Some((Kind::Audio, "audio/wav"))
        );
        assert_eq!(sniff(b"#!AMR\n"), Some((Kind::Audio, "audio/amr")));
        assert_eq!(sniff(b"ID3\x03\0"), Some((Kind::Audio, "audio/mpeg")));
        assert_eq!(
            sniff(b"\0\0\0\x20ftypM4A \0"),
            Some((Kind::Audio, "audio/mp4"))
        );
        for bad in [
            &b"<svg onload=alert(1)>"[..],
            b"%PDF-1.7",
            b"MZ\x90\0",
            b"<html>",
            b"",
            b"PK\x03\x04",
            b"\0\0\0\x20ftypisom",
        ] {
            assert_eq!(sniff(bad), None, "{bad:?}");
        }
    }
}
