//! A systematic Reed–Solomon erasure code over GF(2⁸) (spec §7.6).
//!
//! This module owns how a KEM public key or ciphertext is cut into 16-byte
//! symbols so that *any* `k` distinct symbols rebuild it, whatever was lost.
//! Symbol `i` (0 ≤ i ≤ 255) of an object with data symbols `d_0 … d_{k-1}`
//! is `P(i)`, where `P` is the unique polynomial of degree < k with
//! `P(j) = d_j` for `j < k`, evaluated byte position by byte position in
//! GF(2⁸) with the AES polynomial x⁸ + x⁴ + x³ + x + 1. Symbols `0 … k-1`
//! are the data itself (systematic); symbols `k … 255` are repair symbols.
//!
//! Everything coded here is public (encapsulation keys and KEM
//! ciphertexts), so table lookups are fine: no secret reaches this module.

use alloc::vec::Vec;

/// Bytes per symbol.
pub(crate) const SYMBOL_LEN: usize = 16;
/// Largest number of distinct symbols of one object (indices 0..=255).
pub(crate) const MAX_SYMBOLS: usize = 256;

/// A symbol: its index and its 16 bytes.
pub(crate) type Symbol = (u8, [u8; SYMBOL_LEN]);

// Indices are `u8` values (or sums of two logs, < 510) into tables of 256
// or 512 entries: always in bounds.
#[allow(clippy::indexing_slicing)]
const fn tables() -> ([u8; 512], [u8; 256]) {
    // exp[i] = g^i for the generator g = 0x03, doubled so that
    // exp[log a + log b] needs no reduction mod 255; log is its inverse.
    let mut exp = [0u8; 512];
    let mut log = [0u8; 256];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        // x *= 3  (x * 2 xor x, reduced by the AES polynomial)
        let mut x2 = x << 1;
        if x2 & 0x100 != 0 {
            x2 ^= 0x11B;
        }
        x = x2 ^ x;
        i += 1;
    }
    (exp, log)
}

const TABLES: ([u8; 512], [u8; 256]) = tables();

#[allow(clippy::indexing_slicing)] // u8 and log-sum indices into 256/512-entry tables
fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    let (exp, log) = &TABLES;
    exp[usize::from(log[usize::from(a)]) + usize::from(log[usize::from(b)])]
}

#[allow(clippy::indexing_slicing)] // u8 and log-sum indices into 256/512-entry tables
fn inv(a: u8) -> u8 {
    // Callers never pass 0 (points are distinct, so differences are non-zero).
    let (exp, log) = &TABLES;
    exp[255 - usize::from(log[usize::from(a)])]
}

/// `out ^= c · y` byte-wise, with `c`'s logarithm looked up once.
#[allow(clippy::indexing_slicing)] // u8 and log-sum indices into 256/512-entry tables
fn mul_add(out: &mut [u8; SYMBOL_LEN], c: u8, y: &[u8; SYMBOL_LEN]) {
    if c == 0 {
        return;
    }
    let (exp, log) = &TABLES;
    let lc = usize::from(log[usize::from(c)]);
    for (o, &b) in out.iter_mut().zip(y) {
        if b != 0 {
            *o ^= exp[lc + usize::from(log[usize::from(b)])];
        }
    }
}

/// Barycentric weights `w_j = 1 / Π_{m≠j} (x_j − x_m)` for distinct points.
fn weights(xs: &[u8]) -> Vec<u8> {
    xs.iter()
        .map(|&xj| {
            let mut prod = 1u8;
            for &xm in xs {
                if xm != xj {
                    prod = mul(prod, xj ^ xm);
                }
            }
            inv(prod)
        })
        .collect()
}

/// Evaluates at `x` the polynomial through `(xs[j], ys[j])`, using `w`.
fn evaluate(xs: &[u8], ys: &[[u8; SYMBOL_LEN]], w: &[u8], x: u8) -> [u8; SYMBOL_LEN] {
    if let Some(j) = xs.iter().position(|&xj| xj == x) {
        return ys.get(j).copied().unwrap_or([0; SYMBOL_LEN]);
    }
    // P(x) = L(x) · Σ_j w_j y_j / (x − x_j),  L(x) = Π_m (x − x_m).
    let mut l = 1u8;
    for &xm in xs {
        l = mul(l, x ^ xm);
    }
    let mut out = [0u8; SYMBOL_LEN];
    for ((&xj, yj), &wj) in xs.iter().zip(ys).zip(w) {
        mul_add(&mut out, mul(mul(wj, inv(x ^ xj)), l), yj);
    }
    out
}

/// An object split into `k` data symbols, ready to emit any symbol index.
/// Each repair symbol is computed once and then cached (it is public data).
pub(crate) struct Encoder {
    xs: Vec<u8>,
    data: Vec<[u8; SYMBOL_LEN]>,
    w: Vec<u8>,
    cache: Vec<Option<[u8; SYMBOL_LEN]>>,
}

impl Encoder {
    /// Splits `object` (its length a multiple of 16, at most 256 symbols).
    pub(crate) fn new(object: &[u8]) -> Self {
        let data: Vec<[u8; SYMBOL_LEN]> = object
            .chunks_exact(SYMBOL_LEN)
            .map(|c| {
                let mut s = [0u8; SYMBOL_LEN];
                s.copy_from_slice(c);
                s
            })
            .take(MAX_SYMBOLS)
            .collect();
        let xs: Vec<u8> = (0..=255u8).take(data.len()).collect();
        let w = weights(&xs);
        Self {
            xs,
            data,
            w,
            cache: alloc::vec![None; MAX_SYMBOLS],
        }
    }

    /// Symbol `index`.
    pub(crate) fn symbol(&mut self, index: u8) -> [u8; SYMBOL_LEN] {
        if let Some(d) = self.data.get(usize::from(index)) {
            return *d;
        }
        if let Some(Some(s)) = self.cache.get(usize::from(index)) {
            return *s;
        }
        if self.w.is_empty() {
            // Weights are needed only for repair symbols: computed once, on first use.
            self.w = weights(&self.xs);
        }
        let s = evaluate(&self.xs, &self.data, &self.w, index);
        if let Some(slot) = self.cache.get_mut(usize::from(index)) {
            *slot = Some(s);
        }
        s
    }
}

/// Rebuilds an object of `k` symbols from received symbols. Returns `None`
/// unless at least `k` distinct indices are present **and** every received
/// symbol agrees with the rebuilt object (an inconsistent stream is refused).
pub(crate) fn decode(k: usize, symbols: &[Symbol]) -> Option<Vec<u8>> {
    if k == 0 || k > MAX_SYMBOLS {
        return None;
    }
    // Fast path: every data symbol arrived (no loss): the object is their
    // concatenation, and only repair symbols need checking.
    let mut data: Vec<Option<[u8; SYMBOL_LEN]>> = alloc::vec![None; k];
    for (x, y) in symbols {
        if let Some(slot) = data.get_mut(usize::from(*x)) {
            match slot {
                Some(old) if old != y => return None,
                _ => *slot = Some(*y),
            }
        }
    }
    let out: Vec<u8> = if data.iter().all(Option::is_some) {
        data.iter().flatten().flatten().copied().collect()
    } else {
        let mut xs: Vec<u8> = Vec::with_capacity(k);
        let mut ys: Vec<[u8; SYMBOL_LEN]> = Vec::with_capacity(k);
        for (x, y) in symbols {
            if xs.len() == k {
                break;
            }
            if !xs.contains(x) {
                xs.push(*x);
                ys.push(*y);
            }
        }
        if xs.len() < k {
            return None;
        }
        let w = weights(&xs);
        let mut out = Vec::with_capacity(k * SYMBOL_LEN);
        for i in 0..k {
            let i = u8::try_from(i).ok()?;
            out.extend_from_slice(&evaluate(&xs, &ys, &w, i));
        }
        out
    };
    // Consistency: every received symbol must be what the object implies.
    // Data symbols are checked by construction above only on the fast path,
    // so check everything the object did not come from verbatim.
    let mut enc = Encoder::new(&out);
    if symbols.iter().any(|(x, y)| enc.symbol(*x) != *y) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    #[test]
    fn field_arithmetic() {
        // AES field facts: 0x53 · 0xCA = 1; 0x57 · 0x83 = 0xC1 (FIPS 197 §4.2).
        assert_eq!(mul(0x53, 0xCA), 1);
        assert_eq!(mul(0x57, 0x83), 0xC1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
        }
    }

    #[test]
    fn systematic_symbols_are_the_data() {
        let obj: Vec<u8> = (0..64u8).collect();
        let mut enc = Encoder::new(&obj);
        for i in 0..4u8 {
            assert_eq!(
                enc.symbol(i).as_slice(),
                &obj[usize::from(i) * 16..usize::from(i + 1) * 16]
            );
        }
    }

    #[test]
    fn inconsistent_or_short_streams_are_refused() {
        let obj: Vec<u8> = (0..48u8).collect();
        let mut enc = Encoder::new(&obj);
        let mut syms: Vec<Symbol> = (0..3u8).map(|i| (i, enc.symbol(i))).collect();
        assert_eq!(
            decode(3, &syms[..2]),
            None,
            "two of three symbols are not enough"
        );
        assert_eq!(decode(3, &syms).unwrap(), obj);
        let mut bad = enc.symbol(7);
        bad[3] ^= 1;
        syms.push((7, bad));
        assert_eq!(decode(3, &syms), None, "a wrong repair symbol is detected");
        // Duplicates of one index do not count twice.
        let dup: Vec<Symbol> = vec![(0, enc.symbol(0)), (0, enc.symbol(0)), (1, enc.symbol(1))];
        assert_eq!(decode(3, &dup), None);
        // An object of zero symbols is never a valid stream.
        assert_eq!(decode(0, &[]), None);
        assert_eq!(decode(0, &syms[..1]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any k distinct symbols out of 256 rebuild the object (ML-KEM
        /// ciphertext size: k = 68).
        #[test]
        fn any_k_symbols_decode(obj in proptest::collection::vec(any::<u8>(), 1088), pick in proptest::sample::subsequence((0..=255u8).collect::<Vec<_>>(), 68)) {
            let mut enc = Encoder::new(&obj);
            let syms: Vec<Symbol> = pick.iter().map(|&i| (i, enc.symbol(i))).collect();
            prop_assert_eq!(decode(68, &syms).unwrap(), obj);
        }
    }
}
