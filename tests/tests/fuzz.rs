//! A gRPC-level fuzzer: random and mutated requests for every call of every
//! `frontline.v1.*Service` (read from the descriptor set, server-streaming calls too),
//! sent raw to the real services. Every answer must be a status the contract knows —
//! never UNKNOWN, INTERNAL or UNIMPLEMENTED — and come within [`HANG`]; after each
//! call's batch every service still reports SERVING; requests that are malformed by
//! construction (invalid UTF-8 in a string, wrong wire types, 10 000 nested groups,
//! truncated fields, bad tags) are INVALID_ARGUMENT and write nothing to the stream;
//! and the process' resident memory stays within a (very generous) bound.
//!
//! Cases are deterministic from `FUZZ_SEED` (printed; random if unset), the call's
//! full name and the case index, so a failure replays with
//! `FUZZ_SEED=<seed> FUZZ_ONLY=<Service/Method>`. `FUZZ_CASES` (cases per call,
//! default [`DEFAULT_CASES`]) scales it for `make soak`.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request, ticket_id};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    MethodDescriptor, Value,
};
use tonic::{
    Code, Request, Status,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Cases per call in CI; `FUZZ_CASES` scales it.
const DEFAULT_CASES: usize = 20;
/// A call that has not answered after this long hangs.
const HANG: Duration = Duration::from_secs(30);
/// How long a server stream is read for its first item or status.
const STREAM_PEEK: Duration = Duration::from_millis(300);
/// Growth of the resident set over the run that would mean memory is not bounded.
const RSS_GROWTH_LIMIT_KIB: u64 = 1024 * 1024;
/// Nesting of the deep cases (protobuf decoders stop at 100).
const DEEP: usize = 10_000;
/// The roles a case may call with, one per case in turn (of those the call allows).
const ROLES: [Role; 4] = [
    Role::CustomerSystem,
    Role::Agent,
    Role::Manager,
    Role::Admin,
];

// ---------------------------------------------------------------------------
// A raw codec: the request is the bytes given, the answer the bytes received.

#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

// ---------------------------------------------------------------------------
// Deterministic randomness (splitmix64; no dependency, stable across versions).

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, method: &str, case: usize) -> Rng {
        // FNV-1a over the call's name, mixed with the seed and the case.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in method.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Rng(seed ^ h.rotate_left(17) ^ (case as u64).wrapping_mul(0x9e37_79b9));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `num` times in `den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        uuid::Builder::from_random_bytes((u128::from(a) << 64 | u128::from(b)).to_be_bytes())
            .into_uuid()
            .to_string()
    }
}

// ---------------------------------------------------------------------------
// Random messages of a call's input type.

/// Pieces of nasty strings: control and zero-width characters, bidi marks, emoji
/// (with joiners), combining marks, the edges of Unicode, quoting and path syntax.
const NASTY: &[&str] = &[
    "\0",
    "\u{1}",
    "\u{7}",
    "\u{8}",
    "\t",
    "\n",
    "\r",
    "\u{b}",
    "\u{c}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{ad}",
    "\u{200b}",
    "\u{200c}",
    "\u{200d}",
    "\u{2060}",
    "\u{feff}",
    "\u{200e}",
    "\u{200f}",
    "\u{202a}",
    "\u{202b}",
    "\u{202d}",
    "\u{202e}",
    "\u{2066}",
    "\u{2069}",
    "\u{2028}",
    "\u{2029}",
    "\u{3000}",
    "\u{fffd}",
    "\u{ffff}",
    "\u{10ffff}",
    "\u{e000}",
    "😀",
    "👩\u{200d}👩\u{200d}👧",
    "🏳\u{fe0f}\u{200d}🌈",
    "🇩🇪",
    "e\u{301}",
    "a\u{30a}\u{30a}\u{30a}\u{30a}",
    "ß",
    "İ",
    "ı",
    "Ω",
    "中文",
    "𝕏",
    "ﷺ",
    "a",
    "Z",
    "0",
    "9",
    " ",
    "-",
    "_",
    ".",
    "@",
    "/",
    "\\",
    "%",
    "'",
    "\"",
    "<",
    ">",
    "&",
    ";",
    "*",
    "{",
    "}",
    "$",
    "..",
    "%00",
    "\\u0000",
    ">",
    "#",
];

/// Whole strings with a meaning somewhere: numbers past their type, dates that do
/// not exist, NATS wildcards, injection, odd UUID spellings.
const SPECIAL: &[&str] = &[
    "",
    " ",
    "   ",
    "\u{200b}",
    "\u{feff}",
    "\0",
    "acme",
    "*",
    ">",
    "-1",
    "0",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-9223372036854775809",
    "NaN",
    "1e309",
    "null",
    "true",
    "2024-02-30T25:61:61Z",
    "0000-00-00",
    "a@b.c",
    "@",
    "not-an-email",
    "\"a b\"@example.com",
    "'; DROP TABLE tickets; --",
    "../../etc/passwd",
    "frontline.ticket.>",
    "frontline.*.*",
    "$JS.API.STREAM.DELETE.FRONTLINE",
    "${jndi:ldap://x}",
    "%s%s%n%x",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
    "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
    "6ba7b8109dad11d180b400c04fd430c8",
    "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8\0",
];

/// Builds random values; `budget` (bytes, roughly) bounds what one message holds.
struct Gen<'a> {
    rng: Rng,
    budget: isize,
    /// Ids that exist (tickets submitted before the run), for `*_id` fields.
    known_ids: &'a [String],
    /// The next string is 200 .. 300 KiB (around the 256 KiB request limit).
    long: bool,
}

impl Gen<'_> {
    fn spend(&mut self, n: usize) {
        self.budget -= n as isize;
    }

    fn nasty(&mut self, chars: usize) -> String {
        let mut s = String::new();
        for _ in 0..chars {
            s.push_str(self.rng.pick(NASTY));
        }
        s
    }

    fn string(&mut self, field: &FieldDescriptor) -> String {
        let name = field.name();
        let id_like = name == "id" || name.ends_with("_id") || name.ends_with("_ids");
        if id_like && self.rng.chance(1, 2) {
            return if !self.known_ids.is_empty() && self.rng.chance(1, 2) {
                self.rng.pick(self.known_ids)
            } else {
                self.rng.uuid()
            };
        }
        if name.contains("email") && self.rng.chance(1, 3) {
            return format!("fuzz{}@example.com", self.rng.below(1000));
        }
        if name.contains("tenant") && self.rng.chance(1, 3) {
            return "acme".to_string();
        }
        if std::mem::take(&mut self.long) {
            let len = self.rng.range(200 * 1024, 300 * 1024);
            let piece = self.nasty(4);
            let s = piece.repeat(len / piece.len().max(1) + 1);
            self.spend(s.len());
            return s;
        }
        let s = match self.rng.below(20) {
            0..=4 => (self.rng.pick(SPECIAL)).to_string(),
            5..=9 => {
                let n = self.rng.range(1, 40);
                self.nasty(n)
            }
            10..=12 => format!("fuzz-{}", self.rng.below(100_000)),
            13 => self.rng.uuid(),
            14..=17 if self.budget > 64 * 1024 => {
                // 1 KiB .. 40 KiB of a repeated nasty piece, or of nasty characters.
                let len = self.rng.range(1024, 40 * 1024);
                if self.rng.chance(1, 2) {
                    let piece = self.nasty(3);
                    piece.repeat(len / piece.len().max(1) + 1)
                } else {
                    let mut s = String::with_capacity(len + 8);
                    while s.len() < len {
                        s.push_str(self.rng.pick(NASTY));
                    }
                    s
                }
            }
            18 if self.budget > 400 * 1024 && self.rng.chance(1, 3) => {
                // Past the request limit (256 KiB) sometimes, under it sometimes.
                let len = self.rng.range(200 * 1024, 300 * 1024);
                "\u{200b}x".repeat(len / 4)
            }
            _ => {
                let n = self.rng.range(1, 8);
                self.nasty(n)
            }
        };
        self.spend(s.len() + 2);
        s
    }

    fn bytes(&mut self) -> Vec<u8> {
        let n = match self.rng.below(4) {
            0 => 0,
            1 | 2 => self.rng.range(1, 64),
            _ => self.rng.range(1, 4096),
        };
        self.spend(n);
        // Not UTF-8 on purpose, mostly.
        (0..n).map(|_| (self.rng.next() >> 56) as u8).collect()
    }

    fn value(&mut self, field: &FieldDescriptor, kind: &Kind, depth: usize) -> Value {
        self.spend(4);
        match kind {
            Kind::Double => Value::F64(self.rng.pick(&[
                0.0,
                -0.0,
                -1.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MIN_POSITIVE,
                f64::MAX,
                f64::MIN,
                1e-300,
                5e-324,
                0.5,
                1e15,
            ])),
            Kind::Float => Value::F32(self.rng.pick(&[
                0.0,
                -0.0,
                -1.0,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::MIN_POSITIVE,
                f32::MAX,
                f32::MIN,
                0.5,
            ])),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(match self.rng.below(8) {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => -1,
                3 => 0,
                4 => 1,
                _ => self.rng.next() as i32 >> self.rng.below(31),
            }),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(match self.rng.below(9) {
                0 => i64::MIN,
                1 => i64::MAX,
                2 => -1,
                3 => 0,
                4 => 1,
                // Seconds of year 10 000, and one less than the smallest Timestamp.
                5 => 253_402_300_800,
                6 => -62_135_596_801,
                _ => self.rng.next() as i64 >> self.rng.below(63),
            }),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(match self.rng.below(6) {
                0 => u32::MAX,
                1 => 0,
                2 => 1,
                _ => (self.rng.next() as u32) >> self.rng.below(32),
            }),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(match self.rng.below(6) {
                0 => u64::MAX,
                1 => 0,
                2 => 1,
                _ => self.rng.next() >> self.rng.below(64),
            }),
            Kind::Bool => Value::Bool(self.rng.chance(1, 2)),
            Kind::String => Value::String(self.string(field)),
            Kind::Bytes => Value::Bytes(self.bytes().into()),
            Kind::Enum(e) => {
                let known: Vec<i32> = e.values().map(|v| v.number()).collect();
                Value::EnumNumber(match self.rng.below(5) {
                    0 => self.rng.pick(&[-1, i32::MIN, i32::MAX, 999, 1 << 20]),
                    _ if known.is_empty() => 0,
                    _ => self.rng.pick(&known),
                })
            }
            Kind::Message(m) => Value::Message(self.message(m, depth + 1)),
        }
    }

    fn map_key(&mut self, field: &FieldDescriptor, kind: &Kind) -> MapKey {
        match self.value(field, kind, usize::MAX) {
            Value::Bool(b) => MapKey::Bool(b),
            Value::I32(v) => MapKey::I32(v),
            Value::I64(v) => MapKey::I64(v),
            Value::U32(v) => MapKey::U32(v),
            Value::U64(v) => MapKey::U64(v),
            Value::String(s) => MapKey::String(s),
            _ => MapKey::String(String::new()),
        }
    }

    /// How many elements a repeated field gets: mostly none or a few, sometimes
    /// thousands (of whatever the budget still pays for).
    fn count(&mut self) -> usize {
        match self.rng.below(12) {
            0..=4 => 0,
            5..=8 => self.rng.range(1, 3),
            9 | 10 => self.rng.range(4, 40),
            _ => self.rng.range(500, 5000),
        }
    }

    fn message(&mut self, desc: &MessageDescriptor, depth: usize) -> DynamicMessage {
        let mut message = DynamicMessage::new(desc.clone());
        if depth > 6 || self.budget <= 0 {
            return message;
        }
        for field in desc.fields() {
            if !self.rng.chance(2, 3) {
                continue;
            }
            let kind = field.kind();
            let value = if field.is_map() {
                let Kind::Message(entry) = &kind else {
                    continue;
                };
                let (key_field, value_field) =
                    (entry.map_entry_key_field(), entry.map_entry_value_field());
                let mut map = HashMap::new();
                for _ in 0..self.count().min(64) {
                    let key = self.map_key(&key_field, &key_field.kind());
                    let value = self.value(&value_field, &value_field.kind(), depth);
                    map.insert(key, value);
                }
                Value::Map(map)
            } else if field.is_list() {
                let n = self.count();
                let mut items = Vec::with_capacity(n.min(5000));
                for _ in 0..n {
                    if self.budget <= 0 {
                        break;
                    }
                    items.push(self.value(&field, &kind, depth));
                }
                Value::List(items)
            } else {
                self.value(&field, &kind, depth)
            };
            // A member of a oneof replaces the one set before; that is fine.
            let _ = message.try_set_field(&field, value);
        }
        message
    }
}

// ---------------------------------------------------------------------------
// Raw protobuf, written by hand.

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const START_GROUP: u32 = 3;
const END_GROUP: u32 = 4;
const FIXED32: u32 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn put_len(out: &mut Vec<u8>, field: u32, payload: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Bytes that are not UTF-8 (a lone continuation byte, an overlong NUL, a UTF-16
/// surrogate, a truncated sequence, 0xFF).
fn invalid_utf8(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = b"fuzz ".to_vec();
    bytes.extend_from_slice(rng.pick(&[
        &[0x80][..],
        &[0xc0, 0x80],
        &[0xed, 0xa0, 0x80],
        &[0xe2, 0x82],
        &[0xff, 0xfe],
        &[0xf4, 0x90, 0x80, 0x80],
    ]));
    bytes
}

/// The wire type `field` is written with.
fn wire_type(field: &FieldDescriptor) -> u32 {
    match field.kind() {
        _ if field.is_list() && field.is_packed() => LEN,
        Kind::String | Kind::Bytes | Kind::Message(_) => LEN,
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => FIXED64,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => FIXED32,
        _ => VARINT,
    }
}

/// A wire type `field` can never be decoded from (a group start, for one: proto3
/// has none).
fn wrong_wire_type(field: &FieldDescriptor, rng: &mut Rng) -> u32 {
    if rng.chance(1, 2) {
        return START_GROUP;
    }
    match (field.kind(), field.is_list()) {
        (Kind::String | Kind::Bytes | Kind::Message(_), _) => rng.pick(&[VARINT, FIXED32, FIXED64]),
        // A repeated number is read packed (LEN) or not (its own wire type).
        (Kind::Double | Kind::Fixed64 | Kind::Sfixed64, _) => rng.pick(&[VARINT, FIXED32]),
        (Kind::Float | Kind::Fixed32 | Kind::Sfixed32, _) => rng.pick(&[VARINT, FIXED64]),
        (_, true) => rng.pick(&[FIXED32, FIXED64]),
        (_, false) => rng.pick(&[LEN, FIXED32, FIXED64]),
    }
}

/// A payload that is well formed for `wire`.
fn put_field(out: &mut Vec<u8>, field: u32, wire: u32, rng: &mut Rng) {
    match wire {
        VARINT => {
            put_key(out, field, VARINT);
            put_varint(out, rng.next() >> rng.below(64));
        }
        FIXED64 => {
            put_key(out, field, FIXED64);
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
        FIXED32 => {
            put_key(out, field, FIXED32);
            out.extend_from_slice(&(rng.next() as u32).to_le_bytes());
        }
        START_GROUP => {
            put_key(out, field, START_GROUP);
            put_key(out, field, END_GROUP);
        }
        _ => {
            let n = rng.below(16);
            let payload: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            put_len(out, field, &payload);
        }
    }
}

/// The path (field numbers, outermost first) to a string field reachable from
/// `desc` through message fields, if any.
fn string_path(desc: &MessageDescriptor, depth: usize) -> Option<Vec<u32>> {
    if depth > 8 {
        return None;
    }
    if let Some(f) = desc
        .fields()
        .find(|f| matches!(f.kind(), Kind::String) && !f.is_map())
    {
        return Some(vec![f.number()]);
    }
    for f in desc.fields().filter(|f| !f.is_map()) {
        if let Kind::Message(m) = f.kind()
            && let Some(mut rest) = string_path(&m, depth + 1)
        {
            rest.insert(0, f.number());
            return Some(rest);
        }
    }
    None
}

/// `leaf` wrapped in the message fields of `path` (all but the last number).
fn wrap(path: &[u32], leaf: Vec<u8>) -> Vec<u8> {
    let mut bytes = leaf;
    for &number in path.iter().rev().skip(1) {
        let mut outer = Vec::with_capacity(bytes.len() + 8);
        put_len(&mut outer, number, &bytes);
        bytes = outer;
    }
    bytes
}

/// [`DEEP`] nested groups of an unknown field (skipped recursively by the decoder).
fn deep_groups(field: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(DEEP * 6);
    for _ in 0..DEEP {
        put_key(&mut out, field, START_GROUP);
    }
    for _ in 0..DEEP {
        put_key(&mut out, field, END_GROUP);
    }
    out
}

/// [`DEEP`] levels of length-delimited nesting: through the message's own message
/// fields as far as the schema goes (recursively if it is recursive), then an
/// unknown field inside an unknown field (skipped as bytes: valid).
fn deep_lengths(desc: &MessageDescriptor, rng: &mut Rng) -> Vec<u8> {
    let mut path = Vec::new();
    let mut current = desc.clone();
    while path.len() < DEEP {
        let fields: Vec<FieldDescriptor> = current
            .fields()
            .filter(|f| !f.is_map() && matches!(f.kind(), Kind::Message(_)))
            .collect();
        if fields.is_empty() {
            break;
        }
        let f = rng.pick(&fields).clone();
        path.push(f.number());
        let Kind::Message(m) = f.kind() else { break };
        current = m;
    }
    let unknown = 1_000 + rng.below(1_000) as u32;
    while path.len() < DEEP {
        path.push(unknown);
    }
    let mut bytes = Vec::new();
    for &number in path.iter().rev() {
        let mut outer = Vec::with_capacity(bytes.len() + 8);
        put_len(&mut outer, number, &bytes);
        bytes = outer;
    }
    bytes
}

/// Requests of `desc` that no decoder may accept, with what each is.
fn malformed(desc: &MessageDescriptor, rng: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let mut cases = Vec::new();
    if let Some(path) = string_path(desc, 0) {
        let mut leaf = Vec::new();
        put_len(&mut leaf, *path.last().unwrap(), &invalid_utf8(rng));
        cases.push(("invalid UTF-8 in a string", wrap(&path, leaf)));
    }
    for field in desc.fields().take(4) {
        let mut bytes = Vec::new();
        let wire = wrong_wire_type(&field, rng);
        put_field(&mut bytes, field.number(), wire, rng);
        cases.push(("a wrong wire type", bytes));
    }
    cases.push(("10 000 nested groups", deep_groups(4_242)));
    let mut underflow = Vec::new();
    put_key(&mut underflow, 4_243, LEN);
    put_varint(&mut underflow, 100);
    underflow.extend_from_slice(b"short");
    cases.push(("a length past the end", underflow));
    let mut huge = Vec::new();
    put_key(&mut huge, 4_244, LEN);
    put_varint(&mut huge, 1 << 62);
    cases.push(("a length of 2^62", huge));
    let mut overlong = Vec::new();
    put_key(&mut overlong, 4_245, VARINT);
    overlong.extend_from_slice(&[0xff; 11]);
    cases.push(("an 11-byte varint", overlong));
    let mut unterminated = Vec::new();
    put_key(&mut unterminated, 4_246, VARINT);
    unterminated.extend_from_slice(&[0x80, 0x80]);
    cases.push(("an unterminated varint", unterminated));
    cases.push(("field number 0", vec![0x00, 0x01]));
    cases.push(("wire type 6", vec![(7 << 3) | 6, 0x01]));
    cases.push(("wire type 7", vec![(7 << 3) | 7, 0x01]));
    let mut end = Vec::new();
    put_key(&mut end, 4_247, END_GROUP);
    cases.push(("a lone group end", end));
    let mut unclosed = Vec::new();
    put_key(&mut unclosed, 4_248, START_GROUP);
    put_field(&mut unclosed, 1, VARINT, rng);
    cases.push(("an unclosed group", unclosed));
    let mut mismatched = Vec::new();
    put_key(&mut mismatched, 4_249, START_GROUP);
    put_key(&mut mismatched, 4_250, END_GROUP);
    cases.push(("a group closed by another field", mismatched));
    cases
}

/// A valid encoding of a small random message, mutated once to a few times.
fn mutated(desc: &MessageDescriptor, maker: &mut Gen<'_>) -> Vec<u8> {
    maker.budget = 4 * 1024;
    let mut bytes = maker.message(desc, 0).encode_to_vec();
    let rng = &mut maker.rng;
    for _ in 0..rng.range(1, 4) {
        match rng.below(12) {
            0 | 1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len() * 8);
                bytes[i / 8] ^= 1 << (i % 8);
            }
            2 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes.truncate(at);
            }
            3 => {
                let n = rng.range(1, 32);
                bytes.extend((0..n).map(|_| rng.next() as u8));
            }
            4 => {
                // An unknown field of any well-formed kind, anywhere in number range.
                let number = rng.pick(&[1_000, 19_000, 19_999, 536_870_911, 4_000]) as u32;
                let wire = rng.pick(&[VARINT, FIXED64, LEN, START_GROUP, FIXED32]);
                let mut field = Vec::new();
                put_field(&mut field, number, wire, rng);
                if rng.chance(1, 2) {
                    field.extend_from_slice(&bytes);
                    bytes = field;
                } else {
                    bytes.extend_from_slice(&field);
                }
            }
            5 => {
                if let Some(field) = desc.fields().nth(rng.below(desc.fields().len().max(1))) {
                    let wire = wrong_wire_type(&field, rng);
                    put_field(&mut bytes, field.number(), wire, rng);
                }
            }
            6 => {
                if let Some(path) = string_path(desc, 0) {
                    let mut leaf = Vec::new();
                    put_len(&mut leaf, *path.last().unwrap(), &invalid_utf8(rng));
                    bytes.extend_from_slice(&wrap(&path, leaf));
                }
            }
            7 => bytes.extend_from_slice(&deep_groups(4_300)),
            8 => bytes.extend_from_slice(&deep_lengths(desc, rng)),
            9 => {
                // Known fields with their own wire type but random payloads.
                for field in desc.fields() {
                    if rng.chance(1, 2) {
                        put_field(&mut bytes, field.number(), wire_type(&field), rng);
                    }
                }
            }
            10 => {
                // The same message twice: merged, as protobuf says.
                let copy = bytes.clone();
                bytes.extend_from_slice(&copy);
            }
            _ => {
                let n = rng.range(1, 256);
                bytes = (0..n).map(|_| rng.next() as u8).collect();
            }
        }
    }
    bytes
}

/// Case `case` of `method`: a random message (two in three) or mutated bytes.
fn case_bytes(method: &MethodDescriptor, seed: u64, case: usize, known_ids: &[String]) -> Vec<u8> {
    let input = method.input();
    let mut maker = Gen {
        rng: Rng::new(seed, method.full_name(), case),
        budget: 0,
        known_ids,
        long: false,
    };
    if maker.rng.chance(1, 3) {
        return mutated(&input, &mut maker);
    }
    maker.long = maker.rng.chance(1, 8);
    maker.budget = if maker.rng.chance(1, 10) {
        700 * 1024
    } else {
        96 * 1024
    };
    maker.message(&input, 0).encode_to_vec()
}

// ---------------------------------------------------------------------------
// Sending.

/// The gRPC path, channel and kind of one call.
#[derive(Clone)]
struct Target {
    /// `Service/Method`, as printed and as `FUZZ_ONLY` names it.
    name: String,
    path: PathAndQuery,
    channel: Channel,
    streaming: bool,
    method: MethodDescriptor,
}

/// What a call came to: a status code (OK for an answer) with its message.
#[derive(Debug)]
enum Outcome {
    Answered(Code, String),
    Hung,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Answered(code, message) => write!(f, "{code:?}: {message:?}"),
            Outcome::Hung => write!(f, "no answer within {HANG:?}"),
        }
    }
}

async fn call(target: &Target, token: &str, body: Bytes) -> Outcome {
    let mut grpc = Grpc::new(target.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let streaming = target.streaming;
    let path = target.path.clone();
    let answer = async move {
        if let Err(e) = grpc.ready().await {
            return Err(Status::unavailable(format!("channel not ready: {e}")));
        }
        if streaming {
            let mut stream = grpc
                .server_streaming(request, path, RawCodec)
                .await?
                .into_inner();
            // The first item or the status, if either comes soon; an open, quiet
            // stream is a fine answer too.
            match tokio::time::timeout(STREAM_PEEK, stream.message()).await {
                Ok(Err(status)) => Err(status),
                _ => Ok(()),
            }
        } else {
            grpc.unary(request, path, RawCodec).await.map(|_| ())
        }
    };
    match tokio::time::timeout(HANG, answer).await {
        Err(_) => Outcome::Hung,
        Ok(Ok(())) => Outcome::Answered(Code::Ok, String::new()),
        Ok(Err(status)) => Outcome::Answered(status.code(), status.message().to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    const SHOWN: usize = 512;
    let mut s = String::new();
    for b in bytes.iter().take(SHOWN) {
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > SHOWN {
        let _ = write!(s, "… ({} bytes in all)", bytes.len());
    }
    s
}

/// Every service answers its health check with SERVING.
async fn all_serving(addrs: &[(&str, SocketAddr)]) -> Result<(), String> {
    for (name, addr) in addrs {
        let probe = async {
            let channel = Channel::from_shared(format!("http://{addr}"))
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .map(|r| r.into_inner().status)
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(10), probe).await {
            Ok(Ok(1)) => {}
            Ok(Ok(other)) => return Err(format!("{name} reports health status {other}")),
            Ok(Err(e)) => return Err(format!("{name} health check failed: {e}")),
            Err(_) => return Err(format!("{name} health check hung")),
        }
    }
    Ok(())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Case indices of phase 1b start here (so they differ from phase 2's).
const CHECKED_CASES: usize = 1 << 40;

/// Whether `code` says the call was refused, so that it certainly wrote nothing
/// (UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED leave it open).
fn refused(code: Code) -> bool {
    !matches!(
        code,
        Code::Ok
            | Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
            | Code::Unimplemented
    )
}

/// Waits until routing has handled everything and the stream stands still for a
/// moment (whatever a call set off has landed).
async fn settle(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = cluster.log.last_sequence().await.unwrap();
    let mut still_since = Instant::now();
    loop {
        cluster.routing_settled().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = cluster.log.last_sequence().await.unwrap();
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_millis(300) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream did not stand still within 30 s"
        );
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The cluster with analytics, one client channel per service, and every call of
/// every `frontline.v1.*Service` as a [`Target`].
async fn setup() -> (Cluster, Vec<(&'static str, SocketAddr)>, Vec<Target>) {
    let mut cluster = Cluster::start().await.unwrap();
    let analytics = cluster.start_analytics().await.unwrap();
    let addrs = vec![
        ("intake", cluster.intake_addr),
        ("conversation", cluster.conversation_addr),
        ("routing", cluster.routing_addr),
        ("analytics", analytics),
    ];
    let mut channels = HashMap::new();
    for (name, addr) in &addrs {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        channels.insert(*name, channel);
    }
    let pool = DescriptorPool::decode(frontline_proto::FILE_DESCRIPTOR_SET).unwrap();
    let only = std::env::var("FUZZ_ONLY").ok();
    let mut targets = Vec::new();
    for service in pool.services() {
        let full = service.full_name().to_string();
        let Some(short) = full.strip_prefix("frontline.v1.") else {
            continue;
        };
        let Some(which) = short.strip_suffix("Service") else {
            continue;
        };
        let channel = channels
            .get(which.to_lowercase().as_str())
            .unwrap_or_else(|| panic!("no server for {full}"))
            .clone();
        for method in service.methods() {
            assert!(
                !method.is_client_streaming(),
                "{full}: client streaming is new"
            );
            let name = format!("{short}/{}", method.name());
            if only.as_deref().is_some_and(|o| o != name && o != short) {
                continue;
            }
            targets.push(Target {
                path: format!("/{full}/{}", method.name()).parse().unwrap(),
                name,
                channel: channel.clone(),
                streaming: method.is_server_streaming(),
                method,
            });
        }
    }
    assert!(!targets.is_empty(), "no call matches FUZZ_ONLY={only:?}");
    (cluster, addrs, targets)
}

fn tokens(cluster: &Cluster) -> HashMap<Role, String> {
    ROLES
        .iter()
        .map(|r| (*r, cluster.token(&format!("fuzz-{}", r.as_str()), *r)))
        .collect()
}

fn seed() -> u64 {
    let seed = env_number("FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    println!("fuzz: FUZZ_SEED={seed}");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_survives_random_and_mutated_requests() {
    let seed = seed();
    let cases = env_number("FUZZ_CASES").map_or(DEFAULT_CASES, |n| n.max(1) as usize);
    let started = Instant::now();
    let rss_start = rss_kib();
    let (cluster, addrs, targets) = setup().await;
    let tokens = tokens(&cluster);
    let rss_before = rss_kib();
    let admin = tokens[&Role::Admin].clone();
    println!(
        "fuzz: {} calls, {cases} cases each; RSS {} MiB at the start, {} MiB with the cluster up",
        targets.len(),
        rss_start / 1024,
        rss_before / 1024
    );

    // Phase 1, on a quiet cluster (nothing submitted, so routing has nothing to
    // react to): requests malformed by construction are INVALID_ARGUMENT, for every
    // call, and the stream does not move.
    cluster.routing_settled().await.unwrap();
    let sequence_before = cluster.log.last_sequence().await.unwrap();
    let mut failures = Vec::new();
    let mut sent = 0usize;
    for target in &targets {
        let mut rng = Rng::new(seed, &target.name, usize::MAX);
        for (what, bytes) in malformed(&target.method.input(), &mut rng) {
            sent += 1;
            let outcome = call(target, &admin, Bytes::from(bytes.clone())).await;
            match outcome {
                Outcome::Answered(Code::InvalidArgument, _) => {}
                other => failures.push(format!(
                    "{} ({what}, seed {seed}): expected INVALID_ARGUMENT, got {other}; request {}",
                    target.name,
                    hex(&bytes)
                )),
            }
        }
    }
    let sequence_after = cluster.log.last_sequence().await.unwrap();
    println!(
        "fuzz: {sent} malformed requests, stream at {sequence_before} before and {sequence_after} after"
    );
    assert!(
        failures.is_empty(),
        "malformed requests:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        sequence_before, sequence_after,
        "rejected requests wrote to the stream"
    );
    all_serving(&addrs).await.unwrap();

    // Phase 1b, still before anything routing reacts to on its own: random requests
    // to the calls of intake, conversation and analytics, one at a time, with the
    // stream's last sequence read around each. A request refused outright wrote
    // nothing; after one that was answered, the cluster settles (routing reacts to
    // what it wrote) before the next.
    let mut rejected = 0usize;
    for target in targets
        .iter()
        .filter(|t| !t.name.starts_with("RoutingService/"))
    {
        for case in 0..cases.div_ceil(2) {
            let bytes = case_bytes(&target.method, seed, CHECKED_CASES + case, &[]);
            let role = ROLES[case % ROLES.len()];
            let before = cluster.log.last_sequence().await.unwrap();
            let outcome = call(target, &tokens[&role], Bytes::from(bytes.clone())).await;
            sent += 1;
            match &outcome {
                Outcome::Answered(code, _) if refused(*code) => {
                    rejected += 1;
                    let after = cluster.log.last_sequence().await.unwrap();
                    if after != before {
                        failures.push(format!(
                            "{} case {} as {} (FUZZ_SEED={seed}): refused ({outcome}) but the stream moved from {before} to {after}; request {}",
                            target.name,
                            CHECKED_CASES + case,
                            role.as_str(),
                            hex(&bytes)
                        ));
                    }
                }
                Outcome::Answered(Code::Unknown | Code::Internal | Code::Unimplemented, _)
                | Outcome::Hung => failures.push(format!(
                    "{} case {} as {} (FUZZ_SEED={seed}): {outcome}; request {}",
                    target.name,
                    CHECKED_CASES + case,
                    role.as_str(),
                    hex(&bytes)
                )),
                Outcome::Answered(..) => settle(&cluster).await,
            }
        }
    }
    println!("fuzz: {rejected} refused random requests wrote nothing");
    assert!(
        failures.is_empty(),
        "refused requests:\n{}",
        failures.join("\n")
    );
    all_serving(&addrs).await.unwrap();

    // Some tickets that exist, for `*_id` fields to name.
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut known_ids = Vec::new();
    for i in 0..3 {
        let key = format!("fuzz-seed-{i}");
        intake
            .submit_ticket(submit_request(&key, &format!("fuzz{i}@example.com")))
            .await
            .unwrap();
        known_ids.push(ticket_id("web-shop", &key).to_string());
    }

    // Which roles each call lets through (an empty request; roles that get
    // PERMISSION_DENIED would test only the authorisation).
    let mut allowed: HashMap<String, Vec<Role>> = HashMap::new();
    for target in &targets {
        let mut roles = Vec::new();
        for role in ROLES {
            let outcome = call(target, &tokens[&role], Bytes::new()).await;
            if !matches!(outcome, Outcome::Answered(Code::PermissionDenied, _)) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            roles = ROLES.to_vec();
        }
        allowed.insert(target.name.clone(), roles);
    }

    // Phase 2: random and mutated requests, every call, with the roles it allows.
    let mut codes: HashMap<Code, usize> = HashMap::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut largest = 0usize;
    for target in &targets {
        let roles = &allowed[&target.name];
        for case in 0..cases {
            let bytes = case_bytes(&target.method, seed, case, &known_ids);
            let role = roles[case % roles.len()];
            largest = largest.max(bytes.len());
            let at = Instant::now();
            let outcome = call(target, &tokens[&role], Bytes::from(bytes.clone())).await;
            let took = at.elapsed();
            if took > slowest.0 {
                slowest = (took, format!("{} case {case}", target.name));
            }
            sent += 1;
            let bad = match &outcome {
                Outcome::Hung => true,
                Outcome::Answered(code, _) => {
                    *codes.entry(*code).or_default() += 1;
                    matches!(code, Code::Unknown | Code::Internal | Code::Unimplemented)
                }
            };
            if bad {
                failures.push(format!(
                    "{} case {case} as {} (FUZZ_SEED={seed} FUZZ_ONLY={}): {outcome}; request {}",
                    target.name,
                    role.as_str(),
                    target.name,
                    hex(&bytes)
                ));
            }
        }
        if let Err(e) = all_serving(&addrs).await {
            failures.push(format!("after {}: {e}", target.name));
            break;
        }
    }
    let rss_after = rss_kib();
    let mut summary: Vec<_> = codes.iter().map(|(c, n)| format!("{c:?}: {n}")).collect();
    summary.sort();
    println!(
        "fuzz: {sent} requests in {:.1} s; answers {}; largest {} KiB; slowest {:?} ({}); RSS {} MiB → {} MiB",
        started.elapsed().as_secs_f64(),
        summary.join(", "),
        largest / 1024,
        slowest.0,
        slowest.1,
        rss_before / 1024,
        rss_after / 1024,
    );
    assert!(
        failures.is_empty(),
        "{} failures (FUZZ_SEED={seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    cluster.shutdown().await;
}
