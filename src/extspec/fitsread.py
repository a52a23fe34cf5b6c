"""A small, fast reader for FITS binary tables (the GADF DL3 files and index tables).

DL3 files are read once per reduction job, so their parsing dominates a job's run time with
the generic reader.  This module decompresses a (gzipped) file in one call and maps each
binary table straight onto a numpy structured array.  It handles what GADF files use:
fixed-width columns of types L, B, I, J, K, E, D and A with repeat counts and TDIM.  Anything
else (variable-length arrays, scaled columns, bit columns, complex) raises
:class:`Unsupported`, and the caller falls back to ``astropy.io.fits``.

Returns, per extension name: ``Table(header: dict, columns: dict[str, ndarray], units)``.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Table", "Unsupported", "Corrupt", "read_tables"]

BLOCK = 2880
CARD = 80
_DTYPES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


class Unsupported(Exception):
    """The file uses a FITS feature this reader does not implement (use astropy)."""


class Corrupt(Exception):
    """The file is truncated or not valid FITS."""


@dataclass
class Table:
    header: dict
    columns: dict
    units: dict

    @property
    def names(self):
        return list(self.columns)


def _value(raw: str):
    s = raw.strip()
    if not s:
        return None
    if s.startswith("'"):
        # string: '' is an escaped quote; stop at the closing quote
        out, i = [], 1
        while i < len(s):
            if s[i] == "'":
                if i + 1 < len(s) and s[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(s[i])
            i += 1
        return "".join(out).rstrip()
    v = s.split("/", 1)[0].strip()
    if v == "T":
        return True
    if v == "F":
        return False
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v.replace("D", "E"))
    except ValueError:
        return v


def _parse_header(buf: memoryview, pos: int) -> tuple[dict, int]:
    header = {}
    n = len(buf)
    while True:
        if pos + BLOCK > n:
            raise Corrupt("header runs past the end of the file")
        block = bytes(buf[pos:pos + BLOCK]).decode("ascii", errors="replace")
        pos += BLOCK
        for i in range(0, BLOCK, CARD):
            card = block[i:i + CARD]
            key = card[:8].strip()
            if key == "END":
                return header, pos
            if card[8:10] == "= " and key:
                header[key] = _value(card[10:])
            elif key == "CONTINUE" and header:
                last = list(header)[-1]
                if isinstance(header[last], str):
                    header[last] = header[last].rstrip("&") + (_value(card[8:]) or "")


def _columns(header: dict, data: bytes, nrows: int, row_len: int) -> tuple[dict, dict]:
    nfields = int(header.get("TFIELDS", 0))
    names, formats, offsets, shapes, units = [], [], [], [], {}
    off = 0
    for k in range(1, nfields + 1):
        tform = str(header[f"TFORM{k}"]).strip()
        j = 0
        while j < len(tform) and tform[j].isdigit():
            j += 1
        rep = int(tform[:j]) if j else 1
        code = tform[j:j + 1]
        name = str(header.get(f"TTYPE{k}", f"COL{k}")).strip()
        if f"TSCAL{k}" in header or f"TZERO{k}" in header or code not in _DTYPES and code != "A":
            raise Unsupported(f"column {name} has form {tform}")
        if code == "A":
            dt, shape, size = np.dtype(f"S{rep}"), (), rep
        else:
            base = np.dtype(_DTYPES[code])
            tdim = header.get(f"TDIM{k}")
            shape = tuple(int(x) for x in str(tdim).strip("() ").split(","))[::-1] if tdim else ((rep,) if rep != 1 else ())
            if int(np.prod(shape, dtype=np.int64) if shape else 1) != rep:
                raise Corrupt(f"column {name}: TDIM {tdim} does not match repeat {rep}")
            dt, size = base, rep * base.itemsize
        names.append(name)
        formats.append((dt, shape) if shape else dt)
        offsets.append(off)
        off += size
        units[name] = str(header.get(f"TUNIT{k}", "") or "").strip()
    if off != row_len:
        raise Corrupt(f"row length {row_len} != sum of column widths {off}")
    rec = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": row_len})
    arr = np.frombuffer(data, dtype=rec, count=nrows)
    cols = {}
    for name in names:
        c = arr[name]
        if c.dtype.kind == "S":
            cols[name] = np.char.rstrip(c.astype("U"))
        elif c.dtype.itemsize == 1 and c.dtype.kind == "i":  # logical
            cols[name] = c == ord("T")
        else:
            cols[name] = c.astype(c.dtype.newbyteorder("="))
    return cols, units


def read_tables(path: str | Path, only: set | None = None) -> dict[str, Table]:
    """All binary-table extensions of a FITS file (gzipped or not), keyed by upper-case EXTNAME.

    Parameters
    ----------
    only : set of str, optional
        Extension names to decode (others are skipped cheaply).

    Raises
    ------
    Corrupt, Unsupported, OSError
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise Corrupt(f"bad gzip stream ({exc})") from None
    if not raw.startswith(b"SIMPLE  ="):
        raise Corrupt("not a FITS file (no SIMPLE card)")
    buf = memoryview(raw)
    pos = 0
    tables = {}
    first = True
    while pos < len(buf):
        if not any(bytes(buf[pos:pos + CARD]).strip(b" \x00")):
            break  # trailing padding
        header, pos = _parse_header(buf, pos)
        bitpix = int(header.get("BITPIX", 8))
        naxis = int(header.get("NAXIS", 0))
        dims = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
        size = abs(bitpix) // 8 * int(np.prod(dims, dtype=np.int64)) if naxis else 0
        size = (size + int(header.get("PCOUNT", 0))) * int(header.get("GCOUNT", 1))
        padded = -(-size // BLOCK) * BLOCK
        if pos + size > len(buf):
            raise Corrupt("data section runs past the end of the file (truncated)")
        if not first and header.get("XTENSION", "").strip() == "BINTABLE":
            name = str(header.get("EXTNAME", "")).strip().upper()
            if only is None or name in only:
                if int(header.get("PCOUNT", 0)) != 0:
                    raise Unsupported(f"extension {name} has a heap (variable-length arrays)")
                cols, units = _columns(header, bytes(buf[pos:pos + size]), dims[1] if naxis > 1 else 0, dims[0])
                tables.setdefault(name, Table(header, cols, units))
        first = False
        pos += padded
    return tables
