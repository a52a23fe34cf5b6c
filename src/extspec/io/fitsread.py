"""A small, fast reader for FITS binary tables (the GADF DL3 files and index tables).

DL3 files are read once per reduction job, so their parsing dominates a job's run time with
the generic reader.  This module decompresses a (gzipped) file in one call and maps each
binary table straight onto a numpy structured array.  It handles what GADF files use:
fixed-width columns of types L, B, I, J, K, E, D and A with repeat counts and TDIM, and
variable-length ``P``/``Q`` columns of the numeric types (as object arrays of per-row
arrays).  Anything else (scaled columns, bit columns, complex, variable-length logical or
string columns) raises :class:`Unsupported`; :func:`read_tables_any` then reads the file with
``astropy.io.fits`` (:func:`read_tables_astropy`) -- the one fallback every reader uses.

Returns, per extension name: ``Table(header: dict, columns: dict[str, ndarray], units)``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Table", "Unsupported", "Corrupt", "read_tables", "read_tables_astropy", "read_tables_any"]

BLOCK = 2880
"""Bytes per FITS block (headers and data are padded to whole blocks); defined only here."""
CARD = 80
_DTYPES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_DESCRIPTORS = {"P": ">i4", "Q": ">i8"}  # variable-length array descriptor: (count, heap offset)


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


_STRING = re.compile(r"'((?:[^']|'')*)")


def _value(raw: str):
    s = raw.strip()
    if not s:
        return None
    if s.startswith("'"):
        # string: '' is an escaped quote; stop at the closing quote (or the card's end)
        return _STRING.match(s).group(1).replace("''", "'").rstrip()
    v = s.split("/", 1)[0].strip()
    if not v:
        return None  # keyword without a value (only a comment)
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
    last = None  # keyword of the previous value card (for CONTINUE)
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
                last = key
            elif key == "CONTINUE" and last is not None:
                prev = header[last]
                if isinstance(prev, str) and prev.endswith("&"):  # OGIP long-string convention
                    header[last] = prev[:-1] + (_value(card[8:]) or "")
                else:
                    last = None
            else:
                last = None


def _columns(header: dict, data: bytes, nrows: int, row_len: int) -> tuple[dict, dict]:
    """Columns of a binary table; ``data`` is its data section (rows, then the heap)."""
    nfields = int(header.get("TFIELDS", 0))
    names, formats, offsets, units = [], [], [], {}
    varlen = {}  # column name -> element dtype of a variable-length column
    off = 0
    for k in range(1, nfields + 1):
        tform = str(header[f"TFORM{k}"]).strip()
        j = 0
        while j < len(tform) and tform[j].isdigit():
            j += 1
        rep = int(tform[:j]) if j else 1
        code = tform[j:j + 1]
        name = str(header.get(f"TTYPE{k}", f"COL{k}")).strip()
        scaled = f"TSCAL{k}" in header or f"TZERO{k}" in header
        if code in _DESCRIPTORS:
            elem = tform[j + 1:j + 2]
            if scaled or elem not in _DTYPES or elem == "L" or rep != 1:
                raise Unsupported(f"column {name} has form {tform}")
            varlen[name] = np.dtype(_DTYPES[elem])
            dt, shape = np.dtype(_DESCRIPTORS[code]), (2,)
            size = 2 * dt.itemsize
        elif scaled or code not in _DTYPES and code != "A":
            raise Unsupported(f"column {name} has form {tform}")
        elif code == "A":
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
    heap = int(header.get("THEAP", row_len * nrows))
    cols = {}
    for name in names:
        c = arr[name]
        if name in varlen:
            cols[name] = _varlen_column(c, varlen[name], data, heap, name)
        elif c.dtype.kind == "S":
            cols[name] = np.char.rstrip(c.astype("U"))
        elif c.dtype.itemsize == 1 and c.dtype.kind == "i":  # logical
            cols[name] = c == ord("T")
        else:
            cols[name] = c.astype(c.dtype.newbyteorder("="))
    return cols, units


def _varlen_column(desc: np.ndarray, elem: np.dtype, data: bytes, heap: int, name: str) -> np.ndarray:
    """Object array of per-row arrays of a ``P``/``Q`` column from its (count, offset) descriptors."""
    out = np.empty(desc.shape[0], dtype=object)
    native = elem.newbyteorder("=")
    for i, (n, start) in enumerate(desc.tolist()):
        begin = heap + start
        if n < 0 or start < 0 or begin + n * elem.itemsize > len(data):
            raise Corrupt(f"column {name} row {i}: variable-length array outside the heap")
        out[i] = np.frombuffer(data, dtype=elem, count=n, offset=begin).astype(native)
    return out


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
                cols, units = _columns(header, bytes(buf[pos:pos + size]), dims[1] if naxis > 1 else 0, dims[0])
                tables.setdefault(name, Table(header, cols, units))
        first = False
        pos += padded
    return tables


def read_tables_astropy(path, only=None) -> dict:
    """The same result as :func:`read_tables`, read with ``astropy.io.fits`` (the fallback).

    An astropy warning about a damaged file (e.g. "File may have been truncated") is raised
    as OSError with its first line.
    """
    import warnings

    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    out = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            warnings.simplefilter("ignore", VerifyWarning)
            with fits.open(path, memmap=False) as hdul:
                for h in hdul[1:]:
                    name = h.name.upper()
                    if not isinstance(h, fits.BinTableHDU) or (only is not None and name not in only) \
                            or name in out:
                        continue
                    data = h.data
                    cols = {c.name: np.asarray(data[c.name]) if data is not None else np.zeros(0)
                            for c in h.columns}
                    units = {c.name: str(c.unit or "") for c in h.columns}
                    out[name] = Table(dict(h.header), cols, units)
    except AstropyUserWarning as err:
        msg = str(err).strip()
        raise OSError(msg.splitlines()[0] if msg else type(err).__name__) from None
    return out


def read_tables_any(path, only=None) -> dict:
    """:func:`read_tables`, falling back to :func:`read_tables_astropy` for a FITS feature
    this reader does not implement.  Raises Corrupt or OSError (and astropy's ValueError,
    KeyError, ... for a file astropy cannot parse)."""
    try:
        return read_tables(path, only=only)
    except Unsupported:
        return read_tables_astropy(path, only)
