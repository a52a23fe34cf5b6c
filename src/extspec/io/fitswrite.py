"""A small FITS writer: header cards, a primary image HDU and binary-table extensions.

The products are serialised here directly (FITS standard 4.0: 80-character ASCII cards,
2880-byte blocks, big-endian data) instead of through ``astropy.io.fits``, whose import
alone costs ~0.3 s per job and whose HDU machinery ~30 ms per OGIP set.  Used by
:mod:`extspec.io.ogip` (spectrum files), ``extspec.workflow.pipeline`` (counts, excess and
significance images) and :mod:`extspec.simulate.dl3` (simulated DL3 stores); the tests read every
kind of file back with astropy and check that its verification passes.

Cards are given as ``(key, value[, comment])``: value str (long strings use the OGIP
``CONTINUE`` convention), bool, int, finite float (written as the shortest string that
reads back exactly) or None (a keyword without a value).
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from .fitsread import BLOCK

__all__ = ["card_images", "header_bytes", "primary_header_bytes", "bintable_bytes", "image_bytes",
           "check_ascii"]

_TFORM_DTYPE = {"I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_KEY_RE = re.compile(r"[A-Z0-9_-]{0,8}")  # a keyword: at most 8 of these characters


def check_ascii(text: str, key: str) -> str:
    """``text`` if it is printable ASCII (characters 32-126, what a FITS card may hold); else
    ValueError naming the keyword."""
    if not (text.isascii() and text.isprintable()):  # for ASCII: exactly 32-126
        raise ValueError(f"keyword {key}: value {text!r} is not printable ASCII, not allowed in FITS")
    return text


def _format_value(key: str, value) -> str | None:
    """Fixed-format value field (cols 11-30) of a card; None for a string (handled apart)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int):
        return f"{value:>20d}"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"keyword {key}: non-finite value {value} cannot be written to a FITS header")
        text = repr(value).upper()  # shortest string that reads back exactly
        if "." not in text:
            text = text.replace("E", ".0E") if "E" in text else text + ".0"
        return f"{text:>20}"
    raise TypeError(f"keyword {key}: cannot write a value of type {type(value).__name__} to a FITS header")


def card_images(key: str, value, comment: str = "") -> list[str]:
    """80-character card image(s) of one keyword; long strings use CONTINUE cards."""
    return list(_cards(key, value, comment))


def _cards(key: str, value, comment: str = "") -> tuple[str, ...]:
    """:func:`card_images` as a tuple, kept for the cards that recur (column names and forms,
    units, classes: most of a spectrum's 380); ``typed``: True, 1 and 1.0 are three cards,
    and a zero float is never looked up (0.0 == -0.0)."""
    if isinstance(value, (float, np.floating)) and value == 0.0:
        return _card_images(key, value, comment)
    try:
        return _cached_cards(key, value, comment)
    except TypeError:  # an unhashable value: refused by _card_images below, with its message
        return _card_images(key, value, comment)


def _card_images(key: str, value, comment: str = "") -> tuple[str, ...]:
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"invalid FITS keyword {key!r}")
    comment = check_ascii(comment, key)
    if isinstance(value, str):
        text = check_ascii(value, key)
        esc = text.replace("'", "''")
        if len(esc) <= 68:
            cards = [f"{key:<8}= '{esc:<8}'"]
        else:  # OGIP long-string convention: 'part&' then CONTINUE  'part&' ... 'last'
            if "'" not in text:  # no quote pair to keep whole: 67 characters a card
                parts = [text[i:i + 67] for i in range(0, len(text), 67)]
            else:
                parts, cur = [], ""
                for ch in text:
                    esc = "''" if ch == "'" else ch
                    if len(cur) + len(esc) > 67:
                        parts.append(cur)
                        cur = ""
                    cur += esc
                parts.append(cur)
            cards = []
            for i, p in enumerate(parts):
                amp = "&" if i < len(parts) - 1 else ""
                lead = f"{key:<8}= " if i == 0 else "CONTINUE  "
                cards.append(f"{lead}'{p}{amp}'")
    else:
        cards = [f"{key:<8}= {_format_value(key, value)}"]
    if comment and len(cards[-1]) + 3 + len(comment) <= 80:
        cards[-1] += " / " + comment
    return tuple(f"{c:<80}" for c in cards)


_cached_cards = functools.lru_cache(maxsize=4096, typed=True)(_card_images)


def header_bytes(cards) -> bytes:
    """Header block: cards given as (key, value[, comment]) tuples, END, space padding."""
    lines = []
    for c in cards:
        lines.extend(_cards(*c))
    lines.append(f"{'END':<80}")
    text = "".join(lines)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


def primary_header_bytes() -> bytes:
    return header_bytes([("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, ""),
                          ("NAXIS", 0, ""), ("EXTEND", True, "")])


def bintable_bytes(extname: str, columns, cards) -> bytes:
    """A BINTABLE extension.

    ``columns``: (name, tform, unit, array) with tform ``I``, ``J``, ``K``, ``E``, ``D``,
    ``nD``/``nE`` (fixed-width vector), ``nA`` (string) or ``PI``/``PJ``/``PE``/``PD``
    (variable-length array: ``array`` is a sequence of 1-d arrays, one per row, stored in the
    heap after the rows; the TFORM written is ``PX(max length)``); ``cards``: further keywords.
    """
    fields, arrays, nrows = [], [], None
    heap, heap_len, varlen = [], 0, {}
    for name, tform, _unit, array in columns:
        code = tform.lstrip("0123456789")
        width = int(tform[: len(tform) - len(code)] or 1)
        if code.startswith("P"):
            elem = np.dtype(_TFORM_DTYPE[code[1]])
            sizes = np.array([np.size(r) for r in array], dtype=np.int64)
            flat = np.concatenate([np.ravel(r) for r in array]) if len(sizes) else np.zeros(0)
            desc = np.stack([sizes, heap_len + elem.itemsize * (np.cumsum(sizes) - sizes)], axis=-1)
            heap.append(flat.astype(elem).tobytes())
            heap_len += int(sizes.sum()) * elem.itemsize
            varlen[name] = f"P{code[1]}({int(sizes.max(initial=0))})"
            dt = (name, ">i4", (2,))
            arr = desc
        elif code == "A":
            dt = (name, f"S{width}")
            arr = np.asarray(array, dtype=f"S{width}")
        elif tform[:-1] and code in ("D", "E"):
            dt = (name, _TFORM_DTYPE[code], (width,))
            arr = np.asarray(array).reshape(-1, width)
        else:
            dt = (name, _TFORM_DTYPE[code])
            arr = np.asarray(array).reshape(-1)
        n = arr.shape[0]
        if nrows is not None and n != nrows:
            raise ValueError(f"extension {extname}: column {name} has {n} rows, expected {nrows}")
        nrows = n
        fields.append(dt)
        arrays.append(arr)
    rec = np.zeros(nrows or 0, dtype=np.dtype(fields))
    for (name, *_), arr in zip(columns, arrays):
        rec[name] = arr
    head = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, ""),
        ("NAXIS", 2, ""),
        ("NAXIS1", rec.dtype.itemsize, "bytes per row"),
        ("NAXIS2", rec.shape[0], "number of rows"),
        ("PCOUNT", heap_len, "size of the heap (variable-length arrays)"),
        ("GCOUNT", 1, ""),
        ("TFIELDS", len(columns), ""),
    ]
    for i, (name, tform, unit, _a) in enumerate(columns, start=1):
        head.append((f"TTYPE{i}", name, ""))
        head.append((f"TFORM{i}", varlen.get(name, tform), ""))
        if unit:
            head.append((f"TUNIT{i}", unit, ""))
    head.append(("EXTNAME", extname, ""))
    data = rec.tobytes() + b"".join(heap)
    data += b"\0" * (-len(data) % BLOCK)
    return header_bytes(head + list(cards)) + data


_BITPIX = {np.dtype(np.uint8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32, np.dtype(np.int64): 64,
           np.dtype(np.float32): -32, np.dtype(np.float64): -64}


def image_bytes(image, cards=(), extname: str | None = None) -> bytes:
    """A FITS file holding ``image`` as its primary HDU (no extensions); with ``extname``, an
    IMAGE extension of that name instead (to follow :func:`primary_header_bytes` or another
    HDU in a file of several images).

    ``image`` is an N-d array (numpy order: the last axis is NAXIS1) of uint8, int16, int32,
    int64, float32 or float64.  ``cards`` are further keywords, written after the mandatory
    ``SIMPLE``, ``BITPIX``, ``NAXIS``, ``NAXISn``.  A ``NAXISn`` card in
    ``cards`` is dropped when it equals the image's (e.g. from a WCS header dictionary);
    any other keyword that would define the data layout raises ValueError.
    """
    a = np.asarray(image)
    if a.dtype not in _BITPIX:
        raise TypeError(f"cannot write an image of dtype {a.dtype} to FITS")
    naxes = {f"NAXIS{i}": int(n) for i, n in enumerate(a.shape[::-1], start=1)}
    first = ("SIMPLE", True, "conforms to FITS standard") if extname is None else ("XTENSION", "IMAGE", "image extension")
    head = [first, ("BITPIX", _BITPIX[a.dtype], "array data type"),
            ("NAXIS", a.ndim, "number of array dimensions"), *((k, n, "") for k, n in naxes.items())]
    if extname is not None:
        head += [("PCOUNT", 0, ""), ("GCOUNT", 1, ""), ("EXTNAME", extname, "")]
    rest = []
    for c in cards:
        key, value = c[0], c[1]
        if key in naxes and value == naxes[key]:
            continue
        if key in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "BSCALE", "BZERO", "PCOUNT", "GCOUNT", "XTENSION",
                   "END") or key.startswith("NAXIS"):
            raise ValueError(f"keyword {key}={value!r} conflicts with the image (shape {a.shape}, {a.dtype})")
        rest.append(tuple(c))
    data = a.astype(a.dtype.newbyteorder(">"), copy=False).tobytes()
    data += b"\0" * (-len(data) % BLOCK)
    return header_bytes(head + rest) + data
