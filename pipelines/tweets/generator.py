"""A seeded, realistic tweets export (TSV) for the tweets pipeline, written as a stream to a path or URI.

The file format (the contract of ``pipelines/tweets/pipeline.yml``'s ``format:``; see its README):

- UTF-8 text, lines end with LF (a CR before the LF is tolerated by the loader). One record per line.
- Line 1 is the header: ``id<TAB>user<TAB>created_at<TAB>text<TAB>lang<TAB>retweet_count<TAB>like_count``.
- Fields are separated by TAB and never quoted: ``"`` and ``'`` are ordinary characters. Inside a field a
  backslash escapes: ``\\\\`` is a backslash, ``\\t`` a TAB, ``\\n`` a LF, ``\\r`` a CR; any other
  backslash is kept as it is (a shrug ``¯\\_(ツ)_/¯`` is written ``¯\\\\_(ツ)_/¯``).
- ``id``: the tweet's snowflake id (19 digits: milliseconds since the Twitter epoch << 22).
- ``user``: the author's screen name (letters, digits, underscore, at most 15 characters).
- ``created_at``: Twitter's own format (API v1.1 ``created_at``), ``%a %b %d %H:%M:%S %z %Y`` with English
  day and month names, in the author's local time and UTC offset: ``Wed Nov 18 09:03:11 -0500 2026``.
- ``lang``: BCP 47 language code as Twitter detects it (``en``, ``ja``, ..., ``und`` = undetermined).
- ``retweet_count``, ``like_count``: non-negative integers.

A day's file (``day``) holds tweets created that UTC day plus a few late ones from the day before.
Some lines re-export a tweet already in the file (same id, same content, counts grown since): a loader
keeps one per id. With ``bad_rate`` > 0, that share of the lines is broken the ways real exports break:
a record cut short or with an unescaped TAB (wrong field count), an unescaped line break (the record
split over two lines), a timestamp in another format or impossible, bytes that are not UTF-8, negative
or non-numeric counts, a non-numeric id. ``TweetsFile.bad`` lists each with the reason the loader must
give. Everything depends only on (seed, day, rows, bad_rate, duplicate_rate): ``random.Random(seed)`` and
``Faker.seed_instance(seed)`` drive every choice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import string
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import click

from lakehouse.objectstore import filesystem

COLUMNS = ("id", "user", "created_at", "text", "lang", "retweet_count", "like_count")
HEADER = "\t".join(COLUMNS)
TIMESTAMP_FORMAT = "%a %b %d %H:%M:%S %z %Y"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TWITTER_EPOCH_MS = 1288834974657
# Language, the Faker locale its text comes from, its share of the authors.
LANGUAGES = (
    ("en", "en_US", 0.42), ("ja", "ja_JP", 0.16), ("es", "es_ES", 0.14), ("ar", "ar_AA", 0.08),
    ("fr", "fr_FR", 0.07), ("de", "de_DE", 0.06), ("und", None, 0.07),
)
# UTC offsets in minutes and their share of the authors: mixed, including half-hour zones.
OFFSETS = ((0, 0.20), (-300, 0.18), (-480, 0.10), (60, 0.12), (330, 0.08), (540, 0.12), (-180, 0.08),
           (600, 0.05), (-210, 0.02), (345, 0.02), (120, 0.03))
EMOJI = ("😂", "🔥", "❤️", "🙏", "✨", "👀", "🎉", "😭", "👍", "🚀")
BAD_KINDS = ("truncated", "unescaped_tab", "unescaped_newline", "bad_timestamp", "bad_encoding",
             "negative_count", "non_numeric_count", "bad_id")
LATE_SHARE = 0.02  # tweets of the day before, exported late
POOL_SIZE = 400  # Faker sentences per language, drawn from with the seeded random.Random


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based line number in the file (the header is line 1)
    kind: str
    reason: str  # the rejection reason the loader must give


@dataclass
class TweetsFile:
    """What was written: the truth a test can check the loader against."""

    uri: str
    day: dt.date
    lines: int = 0  # data lines (the header not counted)
    tweets: int = 0  # distinct ids among the good lines
    duplicates: int = 0  # good lines re-exporting an id already in the file
    bad: list[BadLine] = field(default_factory=list)
    size: int = 0
    sha256: str = ""


def escape(value: str) -> str:
    """A field's text as the export writes it: backslash, TAB, LF and CR escaped with a backslash."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    return value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def format_created_at(utc: dt.datetime, offset_minutes: int) -> str:
    """``Wed Nov 18 09:03:11 -0500 2026``: the local time at the offset, English names (no locale)."""
    local = utc + dt.timedelta(minutes=offset_minutes)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return (f"{DAY_NAMES[local.weekday()]} {MONTH_NAMES[local.month - 1]} {local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d} {sign}{hours:02d}{minutes:02d} {local.year}")


@lru_cache(maxsize=4)
def _pools(seed: int) -> dict[str, tuple]:
    """Sentences per language, words for hashtags, name stems: Faker is slow, so it fills pools once."""
    from faker import Faker

    locales = [locale for _, locale, _ in LANGUAGES if locale]
    fake = Faker(locales)
    fake.seed_instance(seed)
    pools = {lang: tuple(fake[locale].sentence(nb_words=9) for _ in range(POOL_SIZE))
             for lang, locale, _ in LANGUAGES if locale}
    pools["words"] = tuple(fake["en_US"].word() for _ in range(POOL_SIZE))
    pools["stems"] = tuple(fake["en_US"].user_name().replace(".", "_")[:11] for _ in range(POOL_SIZE))
    return pools


def _weighted(pairs, rng: random.Random):
    values = [v for v, *_ in pairs]
    weights = [w[-1] for w in pairs]
    return rng.choices(values, weights)[0]


class _Authors:
    """The day's authors: screen name, UTC offset and usual language, a few of them very active."""

    def __init__(self, count: int, rng: random.Random, pools: dict) -> None:
        self.names, self.offsets, self.langs = [], [], []
        seen = set()
        for _ in range(count):
            name = f"{rng.choice(pools['stems'])}{rng.randint(0, 9999)}"[:15]
            while name in seen:
                name = f"{rng.choice(pools['stems'])[:9]}_{rng.randint(0, 99999)}"[:15]
            seen.add(name)
            self.names.append(name)
            self.offsets.append(_weighted(OFFSETS, rng))
            self.langs.append(_weighted([(lang, share) for lang, _, share in LANGUAGES], rng))

    def pick(self, rng: random.Random) -> int:
        return int(len(self.names) * rng.random() ** 2.2)  # skewed: low indexes tweet a lot


def _text(lang: str, rng: random.Random, pools: dict, authors: _Authors) -> str:
    if lang == "und":
        parts = [
            rng.choice(EMOJI) * rng.randint(1, 3),
            f"https://t.co/{''.join(rng.choices(string.ascii_letters + string.digits, k=10))}",
        ]
        return " ".join(rng.sample(parts, len(parts)))
    text = rng.choice(pools[lang])
    roll = rng.random()
    if roll < 0.10:
        text = f'"{text}" - {rng.choice(pools[lang])}'  # quotes are plain characters
    elif roll < 0.18:
        text = f"{text}\n{rng.choice(pools[lang])}"  # a line break inside the tweet
    elif roll < 0.21:
        text = f"{text}\t{rng.choice(EMOJI)}"  # a TAB inside the tweet
    elif roll < 0.23:
        text = f"{text} ¯\\_(ツ)_/¯"  # a backslash
    elif roll < 0.24:
        text = f"{text}\r\n{rng.choice(pools[lang])}"  # a Windows line break
    elif roll < 0.28:
        text = f"{text} it's {rng.choice(pools['words'])}'s"
    if rng.random() < 0.25:
        text = f"@{authors.names[authors.pick(rng)]} {text}"
    if rng.random() < 0.2:
        text = f"{text} #{rng.choice(pools['words'])}"
    if rng.random() < 0.15:
        text = f"{text} {rng.choice(EMOJI)}"
    return text


def _counts(rng: random.Random) -> tuple[int, int]:
    retweets = min(int(rng.paretovariate(1.3)) - 1, 500_000)
    likes = min(int(rng.paretovariate(1.1) * 3) - 3 + retweets, 2_000_000)
    return retweets, likes


def _bad_line(kind: str, fields: list[str], rng: random.Random) -> list[bytes]:
    """One broken record (two lines for an unescaped line break), as bytes."""
    fields = list(fields)
    if kind == "truncated":
        fields = fields[: rng.randint(1, 6)]
    elif kind == "unescaped_tab":
        fields[3] = fields[3] + "\t" + rng.choice(EMOJI)
    elif kind == "unescaped_newline":
        cut = max(1, len(fields[3]) // 2)
        fields[3] = fields[3][:cut] + "\n" + fields[3][cut:]
    elif kind == "bad_timestamp":
        utc = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=rng.randrange(365 * 86400))
        fields[2] = rng.choice((
            utc.strftime("%Y-%m-%dT%H:%M:%S+00:00"),  # ISO 8601 instead of the export format
            format_created_at(utc, 0).replace(DAY_NAMES[utc.weekday()], DAY_NAMES[(utc.weekday() + 1) % 7]),  # wrong weekday
            f"Sat Feb 29 10:00:00 +0000 {rng.choice((2025, 2026, 2027))}",  # no such day
            format_created_at(utc, 0).replace(f" {utc.hour:02d}:", " 24:", 1),  # no such hour
            format_created_at(utc, 0).replace("+0000", "UTC"),  # a zone name, not an offset
            "",
        ))
    elif kind == "negative_count":
        fields[rng.choice((5, 6))] = str(-rng.randint(1, 500))
    elif kind == "non_numeric_count":
        fields[rng.choice((5, 6))] = rng.choice(("1.2K", "n/a", "", "12 345", "NaN", "3e4"))
    elif kind == "bad_id":
        fields[0] = rng.choice(("None", fields[0][:8] + "x" + fields[0][9:], "", "-" + fields[0]))
    data = "\t".join(fields).encode()
    if kind == "bad_encoding":
        # Latin-1 text in a UTF-8 file, a stray byte, or a multi-byte character cut in half.
        junk = rng.choice(("caf\xe9 cr\xe8me".encode("latin-1"), b"\xff\xfe", "日本".encode()[:4], b"\xc3\x28"))
        start = data.index(b"\t", data.index(b"\t", data.index(b"\t") + 1) + 1) + 1  # start of the text
        data = data[:start] + junk + b" " + data[start:]
    return data.split(b"\n")


def expected_reason(line: bytes) -> str | None:
    """The rejection reason of one line of a generated file by the format's rules (None: a good line).

    For the generator's own bookkeeping; tests parse the file with their own code.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    fields = text.split("\t")
    if len(fields) != len(COLUMNS):
        return f"expected {len(COLUMNS)} fields, got {len(fields)}"
    record = dict(zip(COLUMNS, fields))

    def count_reason(name: str) -> str | None:
        value = record[name]
        if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
            return f"negative {name}: {value}"
        if not (value.isascii() and value.isdigit()):
            return f"bad {name}: '{value}'"
        return None

    if reason := count_reason("id"):
        return reason
    if not record["user"].strip():
        return "missing user"
    try:
        parsed = dt.datetime.strptime(record["created_at"], TIMESTAMP_FORMAT)
        if format_created_at(parsed.astimezone(dt.UTC), int(parsed.utcoffset().total_seconds() // 60)) != record["created_at"]:
            raise ValueError
    except ValueError:
        return f"bad created_at: '{record['created_at']}'"
    if not record["lang"].strip():
        return "missing lang"
    return count_reason("retweet_count") or count_reason("like_count")


def write_tweets(out: str, *, rows: int = 2000, day: dt.date | str = dt.date(2026, 11, 20), seed: int = 42,
                 bad_rate: float = 0.0, duplicate_rate: float = 0.02) -> TweetsFile:
    """Write ``rows`` data lines (good tweets, re-exports and bad lines) after the header to ``out``.

    ``out`` is a local path, a file:// or an s3:// URI. The file is written as a stream (memory does not
    grow with ``rows``); returns what was written, with every planted bad line and its reason.
    """
    day = dt.date.fromisoformat(str(day)[:10]) if not isinstance(day, dt.date) else day
    if not 0 <= bad_rate < 1 or not 0 <= duplicate_rate < 1:
        raise ValueError("bad_rate and duplicate_rate must be in [0, 1)")
    rng = random.Random(f"tweets|{seed}|{day.isoformat()}")
    pools = _pools(seed)
    authors = _Authors(max(5, rows // 6), rng, pools)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    recent: deque[list[str]] = deque(maxlen=500)  # tweets that may be re-exported (bounded memory)
    result = TweetsFile(uri=str(out), day=day)
    digest = hashlib.sha256()
    fs, path = filesystem(str(out))
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.create_dir(parent, recursive=True)
    buffer: list[bytes] = []

    def emit(stream, data: bytes) -> None:
        buffer.append(data)
        if len(buffer) >= 4096:
            flush(stream)

    def flush(stream) -> None:
        chunk = b"".join(buffer)
        buffer.clear()
        digest.update(chunk)
        stream.write(chunk)
        result.size += len(chunk)

    with fs.open_output_stream(path) as stream:
        emit(stream, (HEADER + "\n").encode())
        line_number = 1
        index = 0
        while result.lines < rows:
            index += 1
            roll = rng.random()
            if recent and roll < duplicate_rate:
                fields = rng.choice(recent)  # exported again later: its counts have grown since
                fields[5] = str(int(fields[5]) + rng.randint(0, 3))
                fields[6] = str(int(fields[6]) + rng.randint(0, 10))
                line_number += 1
                result.lines += 1
                result.duplicates += 1
                emit(stream, ("\t".join(fields) + "\n").encode())
                continue
            author = authors.pick(rng)
            late = rng.random() < LATE_SHARE
            utc = start + dt.timedelta(milliseconds=rng.randrange(86_400_000)) - dt.timedelta(days=1 if late else 0)
            millis = int(utc.timestamp() * 1000)
            tweet_id = ((millis - TWITTER_EPOCH_MS) << 22) | (index & 0x3FFFFF)
            lang = (
                authors.langs[author] if rng.random() < 0.9 else _weighted([(code, share) for code, _, share in LANGUAGES], rng)
            )
            retweets, likes = _counts(rng)
            fields = [
                str(tweet_id),
                authors.names[author],
                format_created_at(utc.replace(microsecond=0), authors.offsets[author]),
                escape(_text(lang, rng, pools, authors)),
                lang,
                str(retweets),
                str(likes),
            ]
            if rng.random() < bad_rate:
                kind = rng.choice(BAD_KINDS)
                for part in _bad_line(kind, fields, rng):
                    if result.lines >= rows:
                        break
                    line_number += 1
                    result.lines += 1
                    reason = expected_reason(part)
                    if reason is None:  # cannot happen: every kind breaks a rule; fail loudly if one does not
                        raise AssertionError(f"generated bad line {kind} is valid: {part!r}")
                    result.bad.append(BadLine(line_number, kind, reason))
                    emit(stream, part + b"\n")
                continue
            line_number += 1
            result.lines += 1
            result.tweets += 1
            recent.append(fields)
            emit(stream, ("\t".join(fields) + "\n").encode())
        flush(stream)
    result.sha256 = digest.hexdigest()
    return result


@click.command("tweets")
@click.option("--rows", type=click.IntRange(min=0), default=100_000, show_default=True, help="Data lines after the header.")
@click.option("--bad-rate", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of broken lines (field count, timestamp, encoding, counts, id).")
@click.option("--out", required=True, help="Local path, file:// or s3:// URI of the TSV to write.")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default="2026-11-20", show_default=True,
              help="UTC day of the tweets (a few are from the day before).")
@click.option("--seed", type=int, default=42, show_default=True)
def command(rows: int, bad_rate: float, out: str, day: dt.datetime, seed: int) -> None:
    """A tweets export (TSV, the tweets pipeline's format), written as a stream."""
    import time

    from lakehouse.cli import emit

    started = time.monotonic()
    result = write_tweets(out, rows=rows, day=day.date(), seed=seed, bad_rate=bad_rate)
    emit(["generated", "value"], [["file", result.uri], ["lines", result.lines], ["tweets", result.tweets],
                                  ["duplicates", result.duplicates], ["bad lines", len(result.bad)],
                                  ["bytes", result.size], ["sha256", result.sha256],
                                  ["seconds", f"{time.monotonic() - started:.1f}"]], title="tweets")
