//! The native halves of the web-standard globals (`js/url.js`,
//! `js/encoding.js`, `js/crypto.js`): small functions of strings and bytes,
//! each checking its own arguments and bounding its own work, because they
//! run outside QuickJS's interrupt handler and memory limit.
//!
//! Why native at all: the `url` crate is the WHATWG URL reference (parsing,
//! setters, form encoding) and UTF-8 decoding with U+FFFD replacement is
//! exact in Rust's `from_utf8_lossy`; a JavaScript re-implementation would
//! be larger and subtly different. None of these functions reach the host:
//! they compute on their arguments and return.

use rquickjs::function::Opt;
use rquickjs::{ArrayBuffer, Ctx, Exception, Function, Result};
use url::{quirks, Url};

/// The longest URL (or query) the URL functions take, in UTF-8 bytes.
/// Browsers stop at about 2 MB; API URLs are far shorter.
pub(crate) const MAX_URL_BYTES: usize = 1 << 20;

/// The most bytes `TextDecoder.decode` takes at once.
pub(crate) const MAX_DECODE_BYTES: usize = 32 << 20;

/// The most bytes `crypto.getRandomValues` fills at once (the standard's
/// quota).
pub(crate) const MAX_RANDOM_BYTES: usize = 65536;

fn too_long(ctx: &Ctx<'_>, what: &str, len: usize) -> rquickjs::Error {
    Exception::throw_range(
        ctx,
        &format!(
            "{what}: {len} bytes is longer than the {} MiB a URL may have here; keep large data out of URLs (send it in a request body)",
            MAX_URL_BYTES >> 20
        ),
    )
}

fn check_len(ctx: &Ctx<'_>, what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_URL_BYTES {
        return Err(too_long(ctx, what, s.len()));
    }
    Ok(())
}

/// A parsed URL's parts, in the order `js/url.js` reads them.
fn parts(u: &Url) -> Vec<String> {
    vec![
        quirks::href(u).to_string(),
        quirks::origin(u),
        quirks::protocol(u).to_string(),
        quirks::username(u).to_string(),
        quirks::password(u).to_string(),
        quirks::host(u).to_string(),
        quirks::hostname(u).to_string(),
        quirks::port(u).to_string(),
        quirks::pathname(u).to_string(),
        quirks::search(u).to_string(),
        quirks::hash(u).to_string(),
    ]
}

fn parse(input: &str, base: Option<&str>) -> Option<Url> {
    match base {
        None => Url::parse(input).ok(),
        Some(base) => Url::options().base_url(Some(&Url::parse(base).ok()?)).parse(input).ok(),
    }
}

/// `parse(input, base?)`, `set(href, field, value)`, `formParse(query)`,
/// `formSerialize(flat)` for `js/url.js`.
pub(crate) fn url_functions<'js>(
    ctx: &Ctx<'js>,
) -> Result<(Function<'js>, Function<'js>, Function<'js>, Function<'js>)> {
    let parse_fn = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, input: String, base: Opt<Option<String>>| -> Result<Option<Vec<String>>> {
            check_len(&ctx, "URL", &input)?;
            let base = base.0.flatten();
            if let Some(b) = &base {
                check_len(&ctx, "URL base", b)?;
            }
            Ok(parse(&input, base.as_deref()).map(|u| parts(&u)))
        },
    )?;
    let set_fn = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, href: String, field: String, value: String| -> Result<Vec<String>> {
            check_len(&ctx, "URL", &href)?;
            check_len(&ctx, &format!("URL {field}"), &value)?;
            let mut u = Url::parse(&href).map_err(|e| Exception::throw_type(&ctx, &format!("Invalid URL: {e}")))?;
            // A setter whose value does not apply leaves the URL as it was,
            // as the standard says; only the field name is ours to get wrong.
            let _ = match field.as_str() {
                "protocol" => quirks::set_protocol(&mut u, &value),
                "username" => quirks::set_username(&mut u, &value),
                "password" => quirks::set_password(&mut u, &value),
                "host" => quirks::set_host(&mut u, &value),
                "hostname" => quirks::set_hostname(&mut u, &value),
                "port" => quirks::set_port(&mut u, &value),
                "pathname" => {
                    quirks::set_pathname(&mut u, &value);
                    Ok(())
                }
                "search" => {
                    quirks::set_search(&mut u, &value);
                    Ok(())
                }
                "hash" => {
                    quirks::set_hash(&mut u, &value);
                    Ok(())
                }
                other => return Err(Exception::throw_type(&ctx, &format!("URL has no settable field {other:?}"))),
            };
            check_len(&ctx, "URL", quirks::href(&u))?;
            Ok(parts(&u))
        },
    )?;
    let form_parse = Function::new(ctx.clone(), |ctx: Ctx<'js>, query: String| -> Result<Vec<String>> {
        check_len(&ctx, "URLSearchParams", &query)?;
        Ok(url::form_urlencoded::parse(query.as_bytes()).flat_map(|(k, v)| [k.into_owned(), v.into_owned()]).collect())
    })?;
    let form_serialize = Function::new(ctx.clone(), |ctx: Ctx<'js>, flat: Vec<String>| -> Result<String> {
        let total: usize = flat.iter().map(String::len).sum();
        if total > MAX_URL_BYTES {
            return Err(too_long(&ctx, "URLSearchParams", total));
        }
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for pair in flat.chunks(2) {
            out.append_pair(&pair[0], pair.get(1).map_or("", String::as_str));
        }
        Ok(out.finish())
    })?;
    Ok((parse_fn, set_fn, form_parse, form_serialize))
}

/// The bytes `buffer[offset..offset + length]`, checked.
fn byte_range(len: usize, offset: f64, length: f64) -> Option<std::ops::Range<usize>> {
    let whole = |x: f64| (x >= 0.0 && x.fract() == 0.0 && x <= usize::MAX as f64).then_some(x as usize);
    let (start, n) = (whole(offset)?, whole(length)?);
    let end = start.checked_add(n)?;
    (end <= len).then_some(start..end)
}

/// What `decode` makes of the bytes (WHATWG UTF-8 decode).
fn utf8_decode(bytes: &[u8], fatal: bool, ignore_bom: bool) -> std::result::Result<String, usize> {
    let bytes = match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] if !ignore_bom => rest,
        _ => bytes,
    };
    if fatal {
        std::str::from_utf8(bytes).map(str::to_string).map_err(|e| e.valid_up_to())
    } else {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// `encode(string)` and `decode(buffer, offset, length, fatal, ignoreBOM)`
/// for `js/encoding.js`.
pub(crate) fn encoding_functions<'js>(ctx: &Ctx<'js>) -> Result<(Function<'js>, Function<'js>)> {
    // The string's length is already within the call's memory limit (it
    // is a JS string); its UTF-8 is at most three times that.
    let encode = Function::new(ctx.clone(), |ctx: Ctx<'js>, s: String| -> Result<ArrayBuffer<'js>> {
        ArrayBuffer::new(ctx, s.into_bytes())
    })?;
    let decode = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>,
         buffer: ArrayBuffer<'js>,
         offset: f64,
         length: f64,
         fatal: bool,
         ignore_bom: bool|
         -> Result<String> {
            // SAFETY: no JavaScript runs while `bytes` is borrowed: the
            // decoded text is copied out before the string is created.
            let text = {
                let bytes = unsafe { buffer.as_bytes() }.unwrap_or(&[]);
                let Some(range) = byte_range(bytes.len(), offset, length) else {
                    return Err(Exception::throw_range(&ctx, "TextDecoder.decode: the view lies outside its buffer"));
                };
                if range.len() > MAX_DECODE_BYTES {
                    return Err(Exception::throw_range(
                        &ctx,
                        &format!(
                            "TextDecoder.decode: {} bytes is more than the {} MiB decoded at once here; decode it in parts (split at a line break or other ASCII byte)",
                            range.len(),
                            MAX_DECODE_BYTES >> 20
                        ),
                    ));
                }
                utf8_decode(&bytes[range], fatal, ignore_bom)
            };
            text.map_err(|at| {
                Exception::throw_type(
                    &ctx,
                    &format!("TextDecoder (fatal): the data is not valid UTF-8 (the first bad byte is at offset {at}); decode without {{fatal: true}} to get U+FFFD for bad bytes"),
                )
            })
        },
    )?;
    Ok((encode, decode))
}

/// `random(n)` for `js/crypto.js`: n bytes from the operating system's
/// CSPRNG (`getrandom(2)`, allowed by the worker's seccomp filter).
pub(crate) fn random_function<'js>(ctx: &Ctx<'js>) -> Result<Function<'js>> {
    Function::new(ctx.clone(), |ctx: Ctx<'js>, n: f64| -> Result<ArrayBuffer<'js>> {
        if !(n >= 0.0 && n.fract() == 0.0 && n <= MAX_RANDOM_BYTES as f64) {
            return Err(Exception::throw_range(&ctx, "crypto: at most 65536 random bytes at a time"));
        }
        let mut bytes = vec![0u8; n as usize];
        getrandom::fill(&mut bytes)
            .map_err(|e| Exception::throw_internal(&ctx, &format!("crypto: the system's random source failed: {e}")))?;
        ArrayBuffer::new(ctx, bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_follows_whatwg() {
        assert_eq!(utf8_decode(b"\xEF\xBB\xBFhi", false, false).unwrap(), "hi");
        assert_eq!(utf8_decode(b"\xEF\xBB\xBFhi", false, true).unwrap(), "\u{FEFF}hi");
        // Maximal subparts: one U+FFFD for a truncated sequence, one per stray byte.
        assert_eq!(utf8_decode(b"a\xF0\x9F\x98b\x80\x80", false, false).unwrap(), "a\u{FFFD}b\u{FFFD}\u{FFFD}");
        assert_eq!(utf8_decode(b"ok\xFF", true, false), Err(2));
    }

    #[test]
    fn byte_ranges_are_checked() {
        assert_eq!(byte_range(10, 2.0, 3.0), Some(2..5));
        assert_eq!(byte_range(10, 8.0, 3.0), None);
        assert_eq!(byte_range(10, -1.0, 1.0), None);
        assert_eq!(byte_range(10, 0.5, 1.0), None);
        assert_eq!(byte_range(10, f64::NAN, 1.0), None);
        assert_eq!(byte_range(usize::MAX, 1e300, 1.0), None);
    }

    #[test]
    fn urls_parse_against_bases() {
        let u = parse("../b?x=1#f", Some("https://user:pw@example.com:8443/a/c/d")).unwrap();
        let p = parts(&u);
        assert_eq!(p[0], "https://user:pw@example.com:8443/a/b?x=1#f");
        assert_eq!(p[1], "https://example.com:8443");
        assert_eq!((p[7].as_str(), p[8].as_str(), p[9].as_str(), p[10].as_str()), ("8443", "/a/b", "?x=1", "#f"));
        assert!(parse("/relative", None).is_none());
        assert!(parse("x", Some("not a base")).is_none());
    }
}
