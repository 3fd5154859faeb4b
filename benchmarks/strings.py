"""Strings: building, formatting, splitting, joining, searching and
replacing strings, and a small tokenizer.

    python benchmarks/strings.py [LINES]

`run(lines)` makes a text of that many lines, processes it, and returns
a checksum of the results.
"""

import sys


def make_text(lines):
    parts = []
    for i in range(lines):
        parts.append(f"line {i}: value={i * 37 % 1000} name=item{i % 17} tags=a,b,{i % 5}")
    return "\n".join(parts)


def tokens(line):
    """Split a line into words and numbers, by hand."""
    out = []
    word = ""
    for ch in line:
        if ch.isalnum():
            word += ch
        elif word:
            out.append(word)
            word = ""
    if word:
        out.append(word)
    return out


def run(lines):
    text = make_text(lines)
    checksum = 0
    total_tokens = 0
    for line in text.splitlines():
        head, _, rest = line.partition(": ")
        fields = dict(item.split("=") for item in rest.split(" "))
        value = int(fields["value"])
        name = fields["name"].upper().replace("ITEM", "#")
        tags = fields["tags"].split(",")
        total_tokens += len(tokens(line))
        if name.startswith("#1") and "b" in tags:
            checksum += value
        checksum = (checksum * 3 + len(head) + text.find(name[1:], 0, 200)) % 1_000_000_007
    joined = "-".join(str(n) for n in range(lines)).count("1")
    return checksum, total_tokens, joined


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
