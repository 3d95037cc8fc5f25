#!/usr/bin/env python3
"""Side-by-side PII detection benchmark: secmlops and Microsoft Presidio on one labelled corpus.

Usage::

    .venv/bin/python benchmarks/pii.py                     # default corpus + 10^6-row speed run
    .venv/bin/python benchmarks/pii.py --rows 500 --big-rows 0   # quick
    .venv/bin/python benchmarks/pii.py --json out.json     # also write every number as JSON

Corpus (seeded, built here with the standard library): a *table* with one column per kind of
value (headers such as ``email``, ``phone``, ``card_number``, ``ssn``, ``iban``, ``client_ip``,
``date_of_birth``) next to columns of hard look-alikes (``order_number``: random 16-digit numbers,
about 10% of them pass Luhn by chance; ``ref_code``: SSN-shaped numbers in never-issued ranges;
``request_id``: UUIDs; ``build``: version strings like 10.0.19041.1288; ``created_at``: ISO
timestamps; ``sha256``; ``isbn``; ``amount``), and *free-text* rows mixing 0-3 real values with
look-alikes (Luhn-failing card numbers, invalid SSNs, IBANs with a wrong checksum, order ids,
UUIDs, versions, timestamps, hashes, ISBNs, tracking numbers, meeting dates). Real values are
valid: cards pass Luhn in their issuer's range and length, IBANs pass mod-97 with their country's
length, phone numbers are valid for libphonenumber, SSNs are in issuable ranges, IPs are public.
Every real value is a gold span (row, column, entity, start, end).

Scoring: a prediction is a true positive when it has the gold span's entity and overlaps it;
unmatched predictions are false positives, unmatched gold spans false negatives. Entities:
EMAIL, PHONE, CARD, SSN, IBAN, IP, DOB. Presidio's types map as EMAIL_ADDRESS, PHONE_NUMBER,
CREDIT_CARD, US_SSN, IBAN_CODE, IP_ADDRESS and DATE_TIME (its only date type: it cannot tell a
birth date from a timestamp, so its dates count as DOB predictions and the table also shows the
scores without DOB). Its other types (URL, US_BANK_NUMBER, UUID, ...) are ignored, neither
right nor wrong. Presidio is scored at score thresholds 0, 0.3, 0.5 and 0.7 and its best F1 is
the headline (the most favourable honest reading).

Presidio: ``presidio-analyzer`` in ``benchmarks/.venv-peers-pii`` (created on first use), run
with its pattern recognizers only. No spaCy model is available offline, so the AnalyzerEngine
gets Presidio's own ``NoOpNlpEngine`` (no NER: no PERSON/LOCATION, and context words inside the
text cannot boost scores; explicit context, the column header, is passed with every table
cell). tldextract's network fetch of the public-suffix list is replaced by its bundled snapshot.
secmlops runs in this process: ``analyze_frame(..., exhaustive=True)`` (every candidate
validated) on the table and on the free-text column; headers are its context.

Speed: rows per second for each tool on the same corpus (table rows + text rows, wall clock of
the detection calls, engine start-up excluded), and secmlops alone on a 10^6-row copy of the table
through ``scan_frame_pii`` (the scan path: a column's share is estimated from up to 10,000
validated candidates per entity).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# Sibling benchmark scripts (secrets.py, ...) must not shadow standard-library modules.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
ROOT = BENCH.parent
WORK = BENCH / ".work" / "pii"
PEER_VENV = BENCH / ".venv-peers-pii"
PEER_REQUIREMENTS = ["presidio-analyzer==2.2.366"]
ENTITIES = ("EMAIL", "PHONE", "CARD", "SSN", "IBAN", "IP", "DOB")
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "DATE_TIME": "DOB",
}
THRESHOLDS = (0.0, 0.3, 0.5, 0.7)


# --- values ---------------------------------------------------------------------------------


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body + "0")):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
         ("6011", 16), ("65", 16), ("3528", 16), ("36", 14), ("62", 16)]
    )  # fmt: skip
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    if len(number) == 15:
        return rng.choice([number, f"{number[:4]} {number[4:10]} {number[10:]}"])
    if len(number) == 16:
        sep = rng.choice(["", " ", "-"])
        return sep.join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def bad_card(rng: random.Random) -> str:
    body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
    wrong = str((int(luhn_digit(body)) + rng.randint(1, 9)) % 10)
    return rng.choice(["", " "]).join((body + wrong)[i : i + 4] for i in range(0, 16, 4))


def ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def bad_ssn(rng: random.Random) -> str:
    kind = rng.randrange(5)
    area = [0, 666, rng.randint(900, 999), rng.randint(1, 899), rng.randint(1, 899)][kind]
    group = 0 if kind == 3 else rng.randint(1, 99)
    serial = 0 if kind == 4 else rng.randint(1, 9999)
    return f"{area:03d}-{group:02d}-{serial:04d}"


IBAN_SHAPES = {"DE": "8n10n", "GB": "4a14n", "FR": "10n11c2n", "NL": "4a10n", "ES": "20n", "IT": "1a10n12c"}  # fmt: skip


def iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(IBAN_SHAPES))
    shape = IBAN_SHAPES[country]
    bban = ""
    count = ""
    for ch in shape:
        if ch.isdigit():
            count += ch
            continue
        pool = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJ"}
        bban += "".join(rng.choice(pool[ch]) for _ in range(int(count)))
        count = ""
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:  # any other of the 97 check values 2..98
        check = 2 + (check - 2 + rng.randint(1, 96)) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


PHONE_FORMATS = [
    lambda r: (
        f"({r.choice(['212', '415', '617', '312', '646', '303'])}) {r.randint(200, 999)}-{r.randint(0, 9999):04d}"
    ),
    lambda r: (
        f"{r.choice(['212', '415', '617', '312'])}-{r.randint(200, 999)}-{r.randint(0, 9999):04d}"
    ),
    lambda r: (
        f"+1 {r.choice(['212', '415', '617'])} {r.randint(200, 999)} {r.randint(0, 9999):04d}"
    ),
    lambda r: f"+44 20 7{r.randint(100, 999)} {r.randint(1000, 9999)}",
    lambda r: f"+49 30 {r.randint(1000000, 9999999)}",
    lambda r: (
        f"+33 1 {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}"
    ),
]
FIRST = ["anna", "ben", "chloe", "dev", "elif", "farid", "grace", "hiro", "ines", "jon", "kofi"]
DOMAINS = ["example.com", "mail.example.org", "corp.co.uk", "uni.edu", "shop.io", "web.de"]


def email(rng: random.Random) -> str:
    name = rng.choice(FIRST)
    return rng.choice([f"{name}.{rng.choice(FIRST)}", f"{name}{rng.randint(1, 999)}", f"{name}_x"]) + "@" + rng.choice(DOMAINS)  # fmt: skip


def phone(rng: random.Random) -> str:
    return str(rng.choice(PHONE_FORMATS)(rng))


def public_ip(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return f"2a00:{rng.randint(0x1000, 0xFFFF):x}:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
    while True:
        a = rng.choice([8, 23, 31, 45, 62, 81, 93, 104, 151, 185, 203])
        ip = f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if not ip.startswith("203.0.113"):
            return ip


def dob(rng: random.Random) -> str:
    y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]  # fmt: skip
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{d} {months[m - 1]} {y}"])


def timestamp(rng: random.Random) -> str:
    return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"


def version(rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}",
                       f"10.0.{rng.randint(10000, 22631)}.{rng.randint(100, 3000)}"])  # fmt: skip


def order_number(rng: random.Random) -> str:
    return "4" + "".join(rng.choice("0123456789") for _ in range(15))


def isbn(rng: random.Random) -> str:
    return f"978-{rng.randint(0, 9)}-{rng.randint(10, 99)}-{rng.randint(100000, 999999)}-{rng.randint(0, 9)}"


def sha(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(64))


def tracking(rng: random.Random) -> str:
    return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))


# --- corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gold:
    row: int
    column: str
    entity: str
    start: int
    end: int


REAL = {"EMAIL": email, "PHONE": phone, "CARD": card, "SSN": ssn, "IBAN": iban, "IP": public_ip}
LOOK_ALIKES = [
    ("order {}", order_number), ("card ending test {}", bad_card), ("ref {}", bad_ssn),
    ("account {}", lambda r: iban(r, valid=False)), ("request {}", lambda r: str(uuid.UUID(int=r.getrandbits(128)))),
    ("running version {}", version), ("at {}", timestamp), ("digest {}", sha), ("ISBN {}", isbn),
    ("tracking {}", tracking), ("meeting on {}", dob), ("invoice {}", lambda r: str(r.randint(10**9, 10**10 - 1))),
]  # fmt: skip
CONTEXT = {
    "EMAIL": ["write to {}", "contact {}", "{} asked for a refund"],
    "PHONE": ["call {}", "phone: {}", "reach me on {}"],
    "CARD": ["paid with {}", "card {} was declined", "cc {}"],
    "SSN": ["SSN {}", "social security number {}", "ssn: {}"],
    "IBAN": ["IBAN {}", "transfer to {}", "account {} (IBAN)"],
    "IP": ["login from {}", "client {} blocked", "seen at {}"],
    "DOB": ["born {}", "DOB: {}", "date of birth {}"],
}


def build_corpus(
    rows: int, text_rows: int, seed: int
) -> tuple[dict[str, list[str]], list[str], list[Gold]]:
    rng = random.Random(seed)
    gold: list[Gold] = []
    table: dict[str, list[str]] = {}
    real_columns = {
        "email": ("EMAIL", email), "phone": ("PHONE", phone), "card_number": ("CARD", card),
        "ssn": ("SSN", ssn), "iban": ("IBAN", iban), "client_ip": ("IP", public_ip),
        "date_of_birth": ("DOB", dob),
    }  # fmt: skip
    for column, (entity, make) in real_columns.items():
        values = []
        for r in range(rows):
            value = make(rng) if rng.random() > 0.05 else rng.choice(["", "n/a", "unknown"])
            values.append(value)
            if value and value not in ("n/a", "unknown"):
                gold.append(Gold(r, column, entity, 0, len(value)))
        table[column] = values
    fakes = {
        "order_number": order_number, "ref_code": bad_ssn, "request_id": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
        "build": version, "created_at": timestamp, "sha256": sha, "isbn": isbn,
        "amount": lambda r: f"{r.uniform(1, 5000):.2f}",
    }  # fmt: skip
    for column, make in fakes.items():
        table[column] = [make(rng) for _ in range(rows)]
    texts = []
    for r in range(text_rows):
        parts: list[tuple[str, str | None, str]] = []
        for _ in range(rng.randint(0, 3)):
            entity = rng.choice(ENTITIES)
            value = dob(rng) if entity == "DOB" else REAL[entity](rng)
            parts.append((rng.choice(CONTEXT[entity]), entity, value))
        for _ in range(rng.randint(1, 3)):
            template, make = rng.choice(LOOK_ALIKES)
            parts.append((template, None, make(rng)))
        rng.shuffle(parts)
        text = ""
        for template, entity, value in parts:
            before, _, after = template.partition("{}")
            text += ("; " if text else "") + before
            if entity is not None:
                gold.append(Gold(r, "text", entity, len(text), len(text) + len(value)))
            text += value + after
        texts.append(text + ".")
    return table, texts, gold


# --- scoring --------------------------------------------------------------------------------


def score(
    gold: list[Gold], predicted: list[tuple[int, str, str, int, int]], entities: tuple[str, ...]
) -> dict[str, float]:
    wanted = [g for g in gold if g.entity in entities]
    preds = [p for p in predicted if p[2] in entities]
    index: dict[tuple[int, str], list[Gold]] = {}
    for g in wanted:
        index.setdefault((g.row, g.column), []).append(g)
    matched: set[Gold] = set()
    tp = fp = 0
    for row, column, entity, start, end in preds:
        hit = next(
            (
                g
                for g in index.get((row, column), [])
                if g.entity == entity and g.start < end and start < g.end and g not in matched
            ),
            None,
        )
        if hit is None:
            if any(
                g.entity == entity and g.start < end and start < g.end
                for g in index.get((row, column), [])
            ):
                continue  # a second piece of an already matched value: neither right nor wrong
            fp += 1
        else:
            matched.add(hit)
            tp += 1
    fn = len(wanted) - len(matched)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


# --- tools ----------------------------------------------------------------------------------


def run_secmlops(
    table: dict[str, list[str]], texts: list[str]
) -> tuple[list[tuple[int, str, str, int, int]], float]:
    sys.path.insert(0, str(ROOT / "src"))
    import pandas as pd

    from secmlops.scan.data.pii import PiiSettings, analyze_frame

    frame = pd.DataFrame(table)
    text_frame = pd.DataFrame({"text": texts})
    settings = PiiSettings(secrets=False)
    started = time.perf_counter()
    results = analyze_frame(frame, settings, exhaustive=True) + analyze_frame(
        text_frame, settings, exhaustive=True
    )
    seconds = time.perf_counter() - started
    out = []
    for result in results:
        for entity, spans in result.spans.items():
            out.extend((s.row, result.column, entity, s.start, s.end) for s in spans)
    return out, seconds


PRESIDIO_DRIVER = r"""
import json, logging, sys, time
import tldextract, tldextract.tldextract as tx
tx.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())  # offline: bundled snapshot
logging.getLogger("tldextract").setLevel(logging.CRITICAL)
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NoOpNlpEngine
corpus = json.load(open(sys.argv[1]))
engine = AnalyzerEngine(nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]), supported_languages=["en"])
engine.analyze("warm up 415-555-2671 a@b.com", language="en")
out = []
started = time.perf_counter()
for column, values in corpus["table"].items():
    context = column.replace("_", " ").split()
    for row, value in enumerate(values):
        if value:
            for r in engine.analyze(value, language="en", context=context):
                out.append([row, column, r.entity_type, r.start, r.end, r.score])
for row, text in enumerate(corpus["texts"]):
    for r in engine.analyze(text, language="en"):
        out.append([row, "text", r.entity_type, r.start, r.end, r.score])
seconds = time.perf_counter() - started
json.dump({"predictions": out, "seconds": seconds, "recognizers": [r.name for r in engine.registry.recognizers]}, open(sys.argv[2], "w"))
"""


def ensure_presidio(reinstall: bool) -> Path:
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".pii-stamp.json"
    if (
        not reinstall
        and python.exists()
        and stamp.exists()
        and json.loads(stamp.read_text()) == PEER_REQUIREMENTS
    ):
        return python
    print(
        f"  installing {' '.join(PEER_REQUIREMENTS)} into {PEER_VENV.relative_to(ROOT)} ...",
        file=sys.stderr,
    )
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *PEER_REQUIREMENTS,
        ],
        check=True,
    )
    stamp.write_text(json.dumps(PEER_REQUIREMENTS))
    return python


def run_presidio(
    python: Path, table: dict[str, list[str]], texts: list[str]
) -> tuple[list[tuple[int, str, str, int, int, float]], float, list[str]]:
    WORK.mkdir(parents=True, exist_ok=True)
    corpus = WORK / "corpus.json"
    result = WORK / "presidio.json"
    corpus.write_text(json.dumps({"table": table, "texts": texts}))
    driver = WORK / "presidio_driver.py"
    driver.write_text(PRESIDIO_DRIVER)
    env = {**os.environ, "TLDEXTRACT_CACHE": str(WORK / "tldextract"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [str(python), str(driver), str(corpus), str(result)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"presidio failed:\n{proc.stderr[-3000:]}")
    doc = json.loads(result.read_text())
    preds = []
    for row, column, kind, start, end, score_ in doc["predictions"]:
        if kind in PRESIDIO_TYPES:
            preds.append((row, column, PRESIDIO_TYPES[kind], start, end, score_))
    return preds, doc["seconds"], doc["recognizers"]


def big_run(table: dict[str, list[str]], rows: int) -> tuple[float, float, int]:
    import pandas as pd

    from secmlops.findings import Location
    from secmlops.scan.data.pii import scan_frame_pii

    base = pd.DataFrame(table)
    frame = pd.concat([base] * (rows // len(base) + 1), ignore_index=True).iloc[:rows]
    started, cpu = time.perf_counter(), time.process_time()
    findings = scan_frame_pii(frame, Location(path="big"), settings=None)
    return time.perf_counter() - started, time.process_time() - cpu, len(findings)


def table_line(name: str, s: dict[str, float]) -> str:
    return f"  {name:34} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000, help="table rows (default 2000)")
    ap.add_argument("--text-rows", type=int, default=2000, help="free-text rows (default 2000)")
    ap.add_argument(
        "--big-rows", type=int, default=1_000_000, help="secmlops-only speed run (0: skip)"
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", type=Path, help="also write every number here")
    ap.add_argument("--reinstall-peers", action="store_true")
    ap.add_argument(
        "--secmlops-only", action="store_true", help="skip Presidio (no peer venv needed)"
    )
    args = ap.parse_args()

    table, texts, gold = build_corpus(args.rows, args.text_rows, args.seed)
    total_rows = args.rows + args.text_rows
    cells = sum(1 for v in table.values() for x in v if x)
    print(f"corpus: {args.rows:,} table rows x {len(table)} columns ({cells:,} non-empty cells), "
          f"{args.text_rows:,} free-text rows, {len(gold):,} gold values")  # fmt: skip
    print("Presidio runs with pattern recognizers only: no spaCy model is available offline, so "
          "its AnalyzerEngine uses NoOpNlpEngine (no NER, no in-text context words; the column "
          "header is passed as explicit context for table cells).")  # fmt: skip

    ours, our_seconds = run_secmlops(table, texts)
    if args.secmlops_only:  # Presidio's rows below then read 0 / nan
        theirs_all, their_seconds = [], float("nan")
        print("presidio skipped (--secmlops-only)")
    else:
        python = ensure_presidio(args.reinstall_peers)
        theirs_all, their_seconds, recognizers = run_presidio(python, table, texts)
        print(f"presidio recognizers: {', '.join(recognizers)}")

    results: dict[str, object] = {"rows": total_rows, "gold": len(gold)}
    no_dob = tuple(e for e in ENTITIES if e != "DOB")
    ours_all = score(gold, ours, ENTITIES)
    ours_no_dob = score(gold, ours, no_dob)
    by_threshold = {}
    for t in THRESHOLDS:
        preds = [p[:5] for p in theirs_all if p[5] >= t]
        by_threshold[t] = (score(gold, preds, ENTITIES), score(gold, preds, no_dob), preds)
    best = max(THRESHOLDS, key=lambda t: by_threshold[t][0]["f1"])
    theirs, theirs_no_dob, their_preds = by_threshold[best]

    print("\ndetection (all entities: EMAIL PHONE CARD SSN IBAN IP DOB)")
    print(table_line("secmlops", ours_all))
    for t in THRESHOLDS:
        mark = "  <- best F1, headline" if t == best else ""
        print(table_line(f"presidio (score >= {t})", by_threshold[t][0]) + mark)
    print("\ndetection without DOB (Presidio has no birth-date type)")
    print(table_line("secmlops", ours_no_dob))
    print(table_line(f"presidio (score >= {best})", theirs_no_dob))
    print("\nper entity (F1: secmlops / presidio at its headline threshold)")
    per_entity = {}
    for e in ENTITIES:
        a, b = score(gold, ours, (e,)), score(gold, their_preds, (e,))
        per_entity[e] = {"secmlops": a, "presidio": b}
        print(
            f"  {e:6} {a['f1']:.3f} / {b['f1']:.3f}   (P {a['precision']:.3f} / {b['precision']:.3f}, R {a['recall']:.3f} / {b['recall']:.3f})"
        )

    our_rate, their_rate = total_rows / our_seconds, total_rows / their_seconds
    print("\nspeed on this corpus (rows = table rows + text rows; detection calls only)")
    print(f"  secmlops  {our_rate:12,.0f} rows/s  ({our_seconds:.2f} s)")
    print(f"  presidio  {their_rate:12,.0f} rows/s  ({their_seconds:.2f} s)")
    print(f"  ratio secmlops/presidio: {our_rate / their_rate:,.1f}x throughput; F1 {ours_all['f1']:.3f} vs {theirs['f1']:.3f} "
          f"({ours_all['f1'] / theirs['f1']:.2f}x)" if theirs["f1"] else "")  # fmt: skip
    results.update(secmlops=ours_all, secmlops_no_dob=ours_no_dob, presidio_threshold=best,
                   presidio=theirs, presidio_no_dob=theirs_no_dob, per_entity=per_entity,
                   secmlops_rows_per_s=our_rate, presidio_rows_per_s=their_rate,
                   presidio_all_thresholds={str(t): v[0] for t, v in by_threshold.items()})  # fmt: skip
    if args.big_rows:
        seconds, cpu, n = big_run(table, args.big_rows)
        print(f"\nsecmlops scan_frame_pii on {args.big_rows:,} rows x {len(table)} columns: "
              f"{seconds:.1f} s wall, {cpu:.1f} s CPU, {args.big_rows / cpu:,.0f} rows per CPU "
              f"second ({n} findings)")  # fmt: skip
        results.update(
            big_rows=args.big_rows, big_seconds=seconds, big_cpu_seconds=cpu,
            big_rows_per_s=args.big_rows / seconds, big_rows_per_cpu_s=args.big_rows / cpu,
        )  # fmt: skip
    load = os.getloadavg()[0]
    print(f"\nload average during the run: {load:.1f} on {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
