#!/usr/bin/env python3
"""Writes src/scrapekeep/scrape/encoding_indexes.cpp: the WHATWG Encoding
Standard's indexes that the CJK decoders (scrape/cjk_decoders.cpp) and the
single-byte decoder (scrape/single_byte_decoders.cpp) read.

Usage: tools/gen_encoding_indexes.py SOURCE [OUTPUT]

SOURCE is one of
  - the data/ folder of the npm package @kayahr/text-encoding (NAME.cp.js and
    gb18030.ranges.js, each `export default [...]`; x-mac-cyrillic.cp.json, a
    bare array), what the committed file was made from;
  - the encoding-indexes.js of the npm package text-encoding (one object of
    every index), an older copy (2018: before GB18030-2022).
The package's name and version are read from the package.json above SOURCE
and written into the header. Nothing is downloaded: fetch the package with
`npm pack NAME` outside the repository first.
"""

import json
import pathlib
import re
import sys

NAMES = ["jis0208", "jis0212", "euc-kr", "gb18030", "big5"]
RANGES = "gb18030-ranges"
# The single-byte encodings (the Standard's names, in its order) and the index
# each reads: 128 code points, for bytes 0x80 to 0xFF. ISO-8859-8-I, which
# reads ISO-8859-8's, is not written twice (indexes::single_byte_index).
SINGLE_BYTE = [
    ("IBM866", "ibm866"), ("ISO-8859-2", "iso-8859-2"), ("ISO-8859-3", "iso-8859-3"),
    ("ISO-8859-4", "iso-8859-4"), ("ISO-8859-5", "iso-8859-5"), ("ISO-8859-6", "iso-8859-6"),
    ("ISO-8859-7", "iso-8859-7"), ("ISO-8859-8", "iso-8859-8"),
    ("ISO-8859-10", "iso-8859-10"), ("ISO-8859-13", "iso-8859-13"),
    ("ISO-8859-14", "iso-8859-14"), ("ISO-8859-15", "iso-8859-15"),
    ("ISO-8859-16", "iso-8859-16"), ("KOI8-R", "koi8-r"), ("KOI8-U", "koi8-u"),
    ("macintosh", "macintosh"), ("windows-874", "windows-874"),
    ("windows-1250", "windows-1250"), ("windows-1251", "windows-1251"),
    ("windows-1252", "windows-1252"), ("windows-1253", "windows-1253"),
    ("windows-1254", "windows-1254"), ("windows-1255", "windows-1255"),
    ("windows-1256", "windows-1256"), ("windows-1257", "windows-1257"),
    ("windows-1258", "windows-1258"), ("x-mac-cyrillic", "x-mac-cyrillic"),
]
SINGLE_BYTE_INDEXES = sorted({index for _, index in SINGLE_BYTE})
# The number of pointers each index has in the Encoding Standard; the
# generated arrays stop at their last non-null entry.
SPEC_SIZES = {"jis0208": 11280, "jis0212": 8836, "euc-kr": 23940, "gb18030": 23940,
              "big5": 19782}


def read_module(path):
    """The array of an `export default [...]` module, or of a bare JSON file."""
    text = path.read_text()
    if "export default" in text:
        text = text.split("export default", 1)[1]
    return json.loads(text.strip().rstrip(";"))


def read_indexes(source):
    path = pathlib.Path(source)
    if path.is_dir():
        indexes = {}
        for name in NAMES + SINGLE_BYTE_INDEXES:
            module = path / f"{name}.cp.js"
            indexes[name] = read_module(module if module.is_file() else path / f"{name}.cp.json")
        indexes[RANGES] = read_module(path / "gb18030.ranges.js")
        return indexes
    text = path.read_text()
    indexes = {}
    for name in NAMES + SINGLE_BYTE_INDEXES + [RANGES]:
        match = re.search(r'"%s":(\[.*?\])\s*,?\s*\n' % re.escape(name), text, re.S)
        if not match:
            sys.exit(f"gen_encoding_indexes: no index {name} in {source}")
        indexes[name] = json.loads(match.group(1))
    return indexes


def package_of(source):
    for folder in pathlib.Path(source).resolve().parents:
        manifest = folder / "package.json"
        if manifest.is_file():
            package = json.loads(manifest.read_text())
            return f"{package['name']} {package['version']}"
    return "an unnamed copy"


def values(numbers, indent="    ", width=100):
    lines, line = [], indent
    for n in numbers:
        item = f"{n},"
        if len(line) + len(item) + 1 > width:
            lines.append(line.rstrip())
            line = indent
        line += item + " "
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


def zeroed(index):
    return [x or 0 for x in index]


def trimmed(index):
    entries = zeroed(index)
    while entries and entries[-1] == 0:
        entries.pop()
    return entries


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    source = sys.argv[1]
    root = pathlib.Path(__file__).resolve().parent.parent
    output = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else (
        root / "src/scrapekeep/scrape/encoding_indexes.cpp")
    indexes = read_indexes(source)
    for name in NAMES:
        if len(indexes[name]) > SPEC_SIZES[name]:
            sys.exit(f"gen_encoding_indexes: index {name} has {len(indexes[name])} pointers")
        if any(x and x > 0xFFFF for x in indexes[name]) and name != "big5":
            sys.exit(f"gen_encoding_indexes: index {name} has a code point past U+FFFF")
    for name in SINGLE_BYTE_INDEXES:
        index = indexes[name]
        if len(index) != 128 or any(x and not 0x80 <= x <= 0xFFFF for x in index):
            sys.exit(f"gen_encoding_indexes: index {name} is not 128 code points U+0080-U+FFFF")
    big5 = [x or 0 for x in indexes["big5"]]
    if any(x > 0xFFFF and x >> 16 != 2 for x in big5):
        sys.exit("gen_encoding_indexes: index big5 has a code point outside planes 0 and 2")
    ranges = indexes[RANGES]
    if ranges != sorted(ranges) or ranges[0] != [0, 0x80] or ranges[-1] != [189000, 0x10000]:
        sys.exit("gen_encoding_indexes: index gb18030 ranges is not as the Standard has it")

    source_files = pathlib.Path(source).name + ("/*.js" if pathlib.Path(source).is_dir() else "")
    # GB18030-2022 (the Standard's update of 2024) moved 18 pointers of rows A6
    # and FE out of the Private Use Area: 0xA6D9 (pointer 7182) is U+FE10.
    if indexes["gb18030"][7182] == 0xFE10:
        gb18030_note = ['// "Indexes"), index gb18030 as GB18030-2022 changed it (the Standard\'s',
                        "// 2024 update: 18 pointers of rows A6 and FE left the Private Use Area)."]
    else:
        gb18030_note = ['// "Indexes"), index gb18030 as before GB18030-2022 (rows A6 and FE still',
                        "// have 18 Private Use code points the Standard has replaced since 2024)."]
    out = [
        "// Generated by tools/gen_encoding_indexes.py from the npm package",
        f"// {package_of(source)} ({source_files}): do not edit.",
        "//",
        "// The WHATWG Encoding Standard's indexes (https://encoding.spec.whatwg.org/,",
        *gb18030_note,
        "// Copyright (c) WHATWG (Apple, Google, Mozilla, Microsoft), licensed under",
        "// CC BY 4.0; as incorporated into source code, under the BSD 3-Clause",
        "// License. 0 stands for a pointer with no code point; each CJK array ends at",
        "// its last code point (a pointer past it has none).",
        "",
        '#include "scrapekeep/scrape/encoding_indexes.hpp"',
        "",
        "namespace scrapekeep::scrape::indexes {",
        "namespace {",
        "",
        "// clang-format off",
    ]
    for name in NAMES:
        entries = trimmed(indexes[name])
        if name == "big5":
            entries = [x & 0xFFFF for x in entries]
        ident = name.replace("-", "_")
        out.append(f"constexpr std::uint16_t k_{ident}_data[] = {{")
        out.append(values(entries))
        out.append("};")
        out.append("")
    words = [0] * ((len(trimmed(big5)) + 63) // 64)
    for pointer, code_point in enumerate(big5):
        if code_point > 0xFFFF:
            words[pointer // 64] |= 1 << (pointer % 64)
    out.append("// Bit p (of word p / 64) set: Big5 pointer p is in plane 2 (U+20000 plus")
    out.append("// its entry in k_big5_data).")
    out.append("constexpr std::uint64_t k_big5_plane2_data[] = {")
    out.append(values([f"0x{w:X}" for w in words]))
    out.append("};")
    out.append("")
    out.append("constexpr Gb18030Range k_gb18030_ranges_data[] = {")
    out.append(values([f"{{{p}, 0x{c:X}}}" for p, c in ranges]))
    out.append("};")
    out.append("")
    out.append("// Each single-byte encoding's index: the code points of bytes 0x80 to 0xFF,")
    out.append("// eight a line.")
    out.append("constexpr SingleByteIndex k_single_byte_data[] = {")
    for encoding, index in SINGLE_BYTE:
        out.append(f'    {{"{encoding}",  // index {index}')
        out.append("     {{")
        code_points = zeroed(indexes[index])
        for row in range(0, 128, 8):
            line = ", ".join(f"0x{x:04X}" for x in code_points[row:row + 8])
            out.append(f"         {line},  // 0x{0x80 + row:02X}")
        out.append("     }}},")
    out.append("};")
    out.append("")
    out.append("// clang-format on")
    out.append("")
    out.append("}  // namespace")
    out.append("")
    for name in NAMES:
        ident = name.replace("-", "_")
        out.append(f"const std::span<const std::uint16_t> k_{ident}{{k_{ident}_data}};")
    out.append("const std::span<const std::uint64_t> k_big5_plane2{k_big5_plane2_data};")
    out.append("const std::span<const Gb18030Range> k_gb18030_ranges{k_gb18030_ranges_data};")
    out.append("const std::span<const SingleByteIndex> k_single_byte{k_single_byte_data};")
    out.append("")
    out.append("}  // namespace scrapekeep::scrape::indexes")
    output.write_text("\n".join(out) + "\n")
    print(f"gen_encoding_indexes: wrote {output} from {package_of(source)}")


if __name__ == "__main__":
    main()
