//! Arrays in NumPy's `.npy` format (version 1.0, little-endian, C order).
//!
//! Bundles store ids and factors as `.npy` so that they open directly in
//! `numpy.load` for inspection or for comparison with Python tools, and load
//! here with one read and no parsing of numbers.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::fsio::write_file_atomically;

/// Element types stored in bundles.
pub trait Element: Copy + Default {
    /// NumPy's type descriptor, e.g. `<f4`.
    const DESCR: &'static str;
    /// Little-endian bytes of one value.
    fn write_le(self, out: &mut Vec<u8>);
    /// One value from its little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($t:ty, $descr:literal) => {
        impl Element for $t {
            const DESCR: &'static str = $descr;
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("element width"))
            }
        }
    };
}
element!(u8, "|u1");
element!(f32, "<f4");
element!(u32, "<u4");
element!(i64, "<i8");
element!(u64, "<u8");

/// Write `data` with `shape` (1-D or 2-D) to `path`, atomically.
pub fn write<T: Element>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "shape matches data"
    );
    let shape_text = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        T::DESCR
    );
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    write_file_atomically(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        let mut buf = Vec::with_capacity(1 << 16);
        for chunk in data.chunks(1 << 14) {
            buf.clear();
            for v in chunk {
                v.write_le(&mut buf);
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Read an array of `T` from `path`, returning its shape and values.
pub fn read<T: Element>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a valid .npy array", path.display()))
}

fn parse<T: Element>(bytes: &[u8]) -> Result<(Vec<usize>, Vec<T>)> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" || bytes[6] != 1 {
        bail!("missing the NPY 1.0 magic header");
    }
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = bytes
        .get(10..10 + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .context("truncated header")?;
    if !header.contains(&format!("'descr': '{}'", T::DESCR)) {
        bail!("expected element type {}, header is {header}", T::DESCR);
    }
    if header.contains("'fortran_order': True") {
        bail!("Fortran-ordered arrays are not supported");
    }
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .context("header has no shape")?
        .trim();
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .with_context(|| format!("shape ({shape_text}) is not a list of sizes"))
        })
        .collect::<Result<_>>()?;
    let width = std::mem::size_of::<T>();
    let body = &bytes[10 + header_len..];
    // The header is text anyone can edit: a shape whose product wraps around
    // could otherwise match a short file and hand out a table whose rows and
    // dimensions promise far more values than it holds.
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .with_context(|| {
            format!("shape ({shape_text}) has more elements than any array can hold")
        })?;
    let size = count
        .checked_mul(width)
        .with_context(|| format!("shape ({shape_text}) needs more bytes than any file can hold"))?;
    if body.len() != size {
        bail!(
            "shape ({shape_text}) needs {size} bytes of data, the file holds {}",
            body.len()
        );
    }
    Ok((shape, body.chunks_exact(width).map(T::read_le).collect()))
}

/// Write an array file with a header of our choosing over `body`: what a
/// hand-edited or corrupted file looks like, for tests of the readers.
#[cfg(test)]
pub(crate) fn write_raw(path: &Path, descr: &str, shape: &str, body: &[u8]) {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    header.push_str(&" ".repeat((64 - (10 + header.len() + 1) % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(body);
    std::fs::write(path, bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_wrong_types_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write(&p, &[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - 24) % 64, 0, "header is 64-byte aligned");
        let (shape, data) = read::<f32>(&p).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(data[5], 6.0);
        assert!(read::<i64>(&p).is_err());
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read::<f32>(&p).is_err());
        write(&p, &[2], &[7i64, -1]).unwrap();
        assert_eq!(read::<i64>(&p).unwrap(), (vec![2], vec![7, -1]));
    }

    #[test]
    fn shapes_whose_size_overflows_are_refused_not_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.npy");
        // 320 × 2^62 wraps to 0 elements, 2^62 × 4 bytes wraps to 0 bytes: both
        // match an empty body if the arithmetic wraps.
        for (shape, needle) in [
            ("(320, 4611686018427387904)", "more elements than any array"),
            ("(4611686018427387904,)", "more bytes than any file"),
            ("(99999999999999999999999,)", "not a list of sizes"),
        ] {
            write_raw(&p, "<f4", shape, &[]);
            let err = format!("{:#}", read::<f32>(&p).unwrap_err());
            assert!(err.contains("huge.npy") && err.contains(needle), "{err}");
        }
        write_raw(&p, "<f4", "(3, 2)", &[0; 20]);
        let err = format!("{:#}", read::<f32>(&p).unwrap_err());
        assert!(
            err.contains("shape (3, 2) needs 24 bytes of data, the file holds 20"),
            "{err}"
        );
    }
}
