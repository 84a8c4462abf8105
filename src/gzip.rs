//! gzip for `/metrics`, as Go's promhttp (client_golang 1.21) does it: which encoding a request's
//! `Accept-Encoding` allows ([`negotiate`]), and the answer's body compressed as it is read
//! ([`Gzip`]), so that no compressed copy of the answer is ever held whole.
//!
//! miniz_oxide does the deflating; the gzip frame around it (RFC 1952: a 10-byte header, the
//! CRC-32 and length of the text) is written here. Why that crate, that level and no flate2:
//! docs/footprint.md, "gzip".

use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

use miniz_oxide::DataFormat;
use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};

/// The deflate level: measured against bytes on the wire and instructions per scrape
/// (docs/footprint.md, "gzip").
pub const LEVEL: i32 = 1;

/// How an answer's body is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// As `Content-Encoding` and `Accept-Encoding` name it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }
}

/// The encoding for a request whose `Accept-Encoding` header lines are `lines` (all of them, in
/// order), as promhttp chooses it: it offers `identity` then `gzip`, and takes the offer that
/// the highest q-value matches (the value itself or `*`), the first offer on a tie, so
/// `gzip, identity` and `*` get identity; a best match of q=0, or no header, gets identity
/// too. Codings and `q=` are compared as Go does, case-sensitively; a line stops at the first
/// element it cannot parse (golang/gddo's `header.ParseAccept`, which promhttp vendors).
pub fn negotiate<'a>(lines: impl IntoIterator<Item = &'a str>) -> Encoding {
    // The best q that matches each offer (-1: none). Offered first and winning ties, identity
    // is taken unless gzip's is strictly higher; a best of 0 means "not acceptable".
    let (mut identity, mut gzip) = (-1.0f64, -1.0f64);
    for line in lines {
        for (coding, q) in parse_line(line) {
            if coding == "identity" || coding == "*" {
                identity = identity.max(q);
            }
            if coding == "gzip" || coding == "*" {
                gzip = gzip.max(q);
            }
        }
    }
    if gzip > identity && gzip != 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The (coding, q) elements of one header line, as gddo's `ParseAccept` reads them: a token, then
/// optionally `;q=` and a quality; anything else ends the line.
fn parse_line(line: &str) -> impl Iterator<Item = (&str, f64)> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let s = skip_space(rest);
        let end = s.find(|c: char| !is_token_char(c)).unwrap_or(s.len());
        let (coding, after) = s.split_at(end);
        if coding.is_empty() {
            rest = "";
            return None;
        }
        let mut q = 1.0;
        let mut s = skip_space(after);
        if let Some(params) = s.strip_prefix(';') {
            let Some(quality) = skip_space(params).strip_prefix("q=") else {
                rest = "";
                return None;
            };
            let Some((value, after)) = parse_quality(quality) else {
                rest = "";
                return None;
            };
            q = value;
            s = after;
        }
        s = skip_space(s);
        // Past an element, a comma and the next one, or nothing more of this line.
        rest = s.strip_prefix(',').unwrap_or_default();
        Some((coding, q))
    })
}

fn skip_space(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Go's `expectTokenSlash`: RFC 7230 token characters and `/`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c)
}

/// gddo's `expectQuality`: `0` or `1`, then optionally `.` and digits; what follows.
fn parse_quality(s: &str) -> Option<(f64, &str)> {
    let whole = match s.as_bytes().first()? {
        b'0' => 0.0,
        b'1' => 1.0,
        _ => return None,
    };
    let s = s.get(1..)?;
    let Some(fraction) = s.strip_prefix('.') else {
        return Some((whole, s));
    };
    let end = fraction
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(fraction.len());
    let (digits, rest) = fraction.split_at(end);
    let (mut n, mut d) = (0.0, 1.0);
    for b in digits.bytes() {
        n = n * 10.0 + f64::from(b - b'0');
        d *= 10.0;
    }
    Some((whole + n / d, rest))
}

/// RFC 1952's header: deflate, no flags, no time, no extra flags, OS "unknown" (as Go writes it
/// but for the OS byte, which is informational).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Room for deflate's output between two reads of the body.
const OUT: usize = 8 << 10;
/// The text taken from the source at a time.
const IN: usize = 8 << 10;

/// A compressor's state and buffers: about 270 KiB, which take more CPU to allocate and zero
/// than a small answer takes to compress. Kept for the next answer by a [`Pool`].
struct State {
    compressor: CompressorOxide,
    input: [u8; IN],
    output: [u8; OUT],
}

/// The states of finished answers, for the next ones (as promhttp pools its gzip writers). Keeps
/// at most [`KEPT`]: the loop makes one answer at a time, but answers are written by their
/// connections' threads, so several can be in use at once while clients read slowly; the
/// states past that are freed, not kept for ever.
const KEPT: usize = 2;

#[derive(Clone, Default)]
pub struct Pool(Arc<Mutex<Vec<Box<State>>>>);

impl Pool {
    fn take(&self, level: i32) -> Box<State> {
        // Negative window bits: raw deflate, the frame is ours.
        let flags = create_comp_flags_from_zip_params(level, -15, 0);
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match kept {
            Some(mut state) => {
                state.compressor.reset();
                state
                    .compressor
                    .set_format_and_level(DataFormat::Raw, level as u8);
                state
            }
            None => {
                // Written into its box, so that the optimiser can build the ~80 KiB in place
                // rather than on the stack of whichever thread answers first.
                Box::write(
                    Box::new_uninit(),
                    State {
                        compressor: CompressorOxide::new(flags),
                        input: [0; IN],
                        output: [0; OUT],
                    },
                )
            }
        }
    }

    fn give_back(&self, state: Box<State>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT {
            kept.push(state);
        }
    }
}

/// The gzip of what `source` reads, compressed as it is read: it holds a compressor's state
/// (from a [`Pool`], back to it when dropped), never the whole compressed answer.
pub struct Gzip<R> {
    source: R,
    pool: Pool,
    /// Always `Some` until dropped.
    state: Option<Box<State>>,
    stage: Stage,
    /// `input[taken..filled]` is what deflate has not consumed yet.
    taken: usize,
    filled: usize,
    /// `output[sent..made]` is what the reader has not handed out yet.
    sent: usize,
    made: usize,
    crc: u32,
    /// The text's length, modulo 2^32 as RFC 1952 has it.
    length: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Body,
    /// The source is read to its end; deflate is finishing.
    Finishing,
    /// The trailer is in `output`.
    Trailer,
}

impl<R> Drop for Gzip<R> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            self.pool.give_back(state);
        }
    }
}

impl<R: Read> Gzip<R> {
    pub fn new(source: R, pool: &Pool) -> Gzip<R> {
        Gzip::with_level(source, pool, LEVEL)
    }

    /// At another deflate level (0 to 10), for the benchmarks that chose [`LEVEL`].
    pub fn with_level(source: R, pool: &Pool, level: i32) -> Gzip<R> {
        let mut state = pool.take(level);
        state.output[..HEADER.len()].copy_from_slice(&HEADER);
        Gzip {
            source,
            pool: pool.clone(),
            state: Some(state),
            stage: Stage::Body,
            taken: 0,
            filled: 0,
            sent: 0,
            made: HEADER.len(),
            crc: !0,
            length: 0,
        }
    }

    /// Makes more output: false once the stream has ended.
    fn produce(&mut self) -> io::Result<bool> {
        let Some(state) = self.state.as_deref_mut() else {
            return Ok(false);
        };
        self.sent = 0;
        self.made = 0;
        loop {
            match self.stage {
                Stage::Trailer => return Ok(false),
                Stage::Body if self.taken == self.filled => {
                    let n = self.source.read(&mut state.input)?;
                    self.taken = 0;
                    self.filled = n;
                    if n == 0 {
                        self.stage = Stage::Finishing;
                    } else {
                        let read = state.input.get(..n).unwrap_or(&[]);
                        self.crc = crc32_update(self.crc, read);
                        self.length = self.length.wrapping_add(n as u32);
                    }
                }
                _ => {}
            }
            let flush = match self.stage {
                Stage::Finishing => TDEFLFlush::Finish,
                _ => TDEFLFlush::None,
            };
            let pending = state.input.get(self.taken..self.filled).unwrap_or(&[]);
            let (status, consumed, produced) =
                compress(&mut state.compressor, pending, &mut state.output, flush);
            self.taken += consumed;
            self.made = produced;
            match status {
                TDEFLStatus::Okay => {}
                TDEFLStatus::Done if self.made + 8 <= OUT => {
                    let crc = !self.crc;
                    state.output[self.made..self.made + 4].copy_from_slice(&crc.to_le_bytes());
                    state.output[self.made + 4..self.made + 8]
                        .copy_from_slice(&self.length.to_le_bytes());
                    self.made += 8;
                    self.stage = Stage::Trailer;
                }
                // Done with a full buffer cannot happen: deflate stops short of filling it when
                // finishing (it reports Okay until all is out).
                _ => return Err(io::Error::other("deflate failed")),
            }
            if self.made > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for Gzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sent == self.made && !self.produce()? {
            return Ok(0);
        }
        let output = self.state.as_ref().map_or(&[][..], |s| &s.output[..]);
        let ready = output.get(self.sent..self.made).unwrap_or(&[]);
        let n = ready.len().min(buf.len());
        buf[..n].copy_from_slice(&ready[..n]);
        self.sent += n;
        Ok(n)
    }
}

/// CRC-32 (IEEE, reflected, as gzip has it) a byte at a time from a table built at compile time.
/// Eight bytes at a time takes a fifth of the instructions but cost 7,840 bytes of binary
/// (docs/footprint.md, "gzip").
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = CRC_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Gzip as G, Identity as I};

    /// (Accept-Encoding lines, what promhttp answers). Each row was checked against the Go
    /// exporter v0.4.0 (`curl -H 'Accept-Encoding: ...'`, docs/footprint.md, "gzip").
    const ROWS: &[(&[&str], Encoding)] = &[
        // Prometheus 2.x and 3.x, compression on (the default) and `enable_compression: false`.
        (&["gzip"], G),
        (&["identity"], I),
        // No header: identity.
        (&[], I),
        (&[""], I),
        // curl --compressed, browsers.
        (&["deflate, gzip"], G),
        (&["deflate, gzip, br, zstd"], G),
        (&["gzip, deflate, br"], G),
        // Refused outright.
        (&["gzip;q=0"], I),
        (&["gzip;q=0, *"], I),
        (&["*;q=0"], I),
        (&["identity;q=0"], I),
        // identity is offered first and wins ties.
        (&["*"], I),
        (&["gzip, identity"], I),
        (&["gzip;q=0.5, identity;q=0.5"], I),
        (&["gzip;q=0.5, *;q=0.6"], I),
        // q-values.
        (&["identity;q=0.5, gzip"], G),
        (&["identity;q=0, gzip;q=0.1"], G),
        (&["br, gzip;q=0.9"], G),
        (&["gzip;q=0.001"], G),
        (&["gzip;q=1.5"], G),
        // Spaces as clients write them.
        (&["gzip; q=1"], G),
        (&["gzip , deflate"], G),
        (&[" gzip"], G),
        // Case-sensitive, as Go compares.
        (&["GZIP"], I),
        (&["gzip;Q=1"], I),
        (&["x-gzip"], I),
        (&["deflate"], I),
        // A line stops at what cannot be parsed.
        (&["gzip;level=1"], I),
        (&["identity;level=1, gzip"], I),
        (&["gzip;q=x"], I),
        // Several lines count together, in order.
        (&["deflate", "gzip"], G),
        (&["gzip", "identity"], I),
        (&["gzip;q=0", "gzip"], G),
    ];

    #[test]
    fn negotiates_as_promhttp() {
        for (lines, expected) in ROWS {
            assert_eq!(
                negotiate(lines.iter().copied()),
                *expected,
                "Accept-Encoding {lines:?}"
            );
        }
    }

    #[test]
    fn every_element_counts() {
        let mut line = "a, ".repeat(1000);
        line.push_str("gzip");
        assert_eq!(negotiate([line.as_str()]), G);
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        assert_eq!(gz.get(..10), Some(&HEADER[..]), "the gzip header");
        let body = &gz[10..gz.len() - 8];
        let text = miniz_oxide::inflate::decompress_to_vec(body).expect("valid deflate");
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(
            trailer[..4],
            crc32_update(!0, &text).to_le_bytes().map(|b| !b)
        );
        assert_eq!(trailer[4..], (text.len() as u32).to_le_bytes());
        text
    }

    /// A reader that hands out at most `step` bytes a call, as a socket writer may ask.
    fn read_all(mut r: impl Read, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            let n = r.read(&mut buf).expect("reads");
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn the_body_decompresses_to_the_text() {
        let mut text = Vec::new();
        for i in 0..40_000u32 {
            text.extend_from_slice(
                format!(
                    "ecs_cpu_seconds_total{{container_name=\"c{}\"}} {i}\n",
                    i % 7
                )
                .as_bytes(),
            );
        }
        let pool = Pool::default();
        for (len, step) in [
            (0, 1),
            (1, 1),
            (100, 3),
            (IN, 7),
            (IN + 1, 4096),
            (text.len(), 1 << 16),
        ] {
            let part = &text[..len];
            let gz = read_all(Gzip::new(part, &pool), step);
            assert_eq!(gunzip(&gz), part, "{len} bytes read {step} at a time");
            if len > 1000 {
                assert!(gz.len() < len / 4, "compressed: {} of {len}", gz.len());
            }
        }
    }

    /// A client that goes away mid-answer drops the reader: its state goes back to the pool
    /// half used, and the next answer must not see any of it.
    #[test]
    fn a_state_given_back_mid_answer_is_reset() {
        let pool = Pool::default();
        let text: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i * 7919).to_le_bytes())
            .collect();
        let mut first = Gzip::new(&text[..], &pool);
        let mut some = [0u8; 5000];
        first.read_exact(&mut some).expect("part of an answer");
        drop(first);
        assert_eq!(pool.0.lock().expect("pool").len(), 1, "given back");
        let again = read_all(Gzip::new(&b"ecs_up 1\n"[..], &pool), 100);
        assert_eq!(gunzip(&again), b"ecs_up 1\n");
        assert_eq!(pool.0.lock().expect("pool").len(), 1, "one state, reused");
    }

    /// States come back to the pool, but no more than it keeps.
    #[test]
    fn the_pool_keeps_at_most_two_states() {
        let pool = Pool::default();
        let answers: Vec<_> = (0..5)
            .map(|_| Gzip::new(&b"ecs_up 1\n"[..], &pool))
            .collect();
        drop(answers);
        assert_eq!(pool.0.lock().expect("pool").len(), KEPT);
    }

    /// The body can be written by a thread other than the loop's, after the scrape has moved on.
    #[test]
    fn an_answer_body_is_owned_and_sendable() {
        fn owned<T: Read + Send + 'static>(_: &T) {}
        let mut answer = crate::exposition::Exposition::default();
        owned(&Gzip::new(answer.take(), &Pool::default()));
    }

    /// The table gives what one bit at a time gives, at every length and split.
    #[test]
    fn crc32_by_table_is_crc32_by_bits() {
        fn by_bits(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        0xedb8_8320 ^ (crc >> 1)
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let text: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..text.len() {
            assert_eq!(
                !crc32_update(!0, &text[..len]),
                by_bits(&text[..len]),
                "{len}"
            );
            let (a, b) = text[..len].split_at(len / 3);
            assert_eq!(!crc32_update(crc32_update(!0, a), b), by_bits(&text[..len]));
        }
    }

    #[test]
    fn crc32_of_the_check_string() {
        // The CRC-32 check value (RFC 1952's CRC, as zlib's crc32 gives it).
        assert_eq!(!crc32_update(!0, b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn source_errors_come_through() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
        }
        let mut gz = Gzip::new(Failing, &Pool::default());
        let mut buf = [0u8; 64];
        // The header first, then the error.
        assert_eq!(gz.read(&mut buf).expect("the header"), 10);
        assert!(gz.read(&mut buf).is_err());
    }
}
