"""Audio formats of a stream and the seconds its bytes hold: pure functions, no IO.

A streaming STT connection states its raw audio format in the query string (Deepgram: ``encoding``,
``sample_rate``, ``channels``; AssemblyAI: ``encoding``, ``sample_rate``), in a settings message (Deepgram
Voice Agent: ``audio.input``) or in a WAV header at the start of the audio. Raw PCM has a fixed byte rate,
so the seconds sent are ``bytes / (sample_rate x bytes_per_sample x channels)``. Compressed encodings
(opus, flac, speex, amr, ...) have none: their bytes are counted but not turned into seconds.

>>> fmt = StreamFormat("linear16", 16000, 1)
>>> fmt.seconds(32000)
Decimal('1')
>>> StreamFormat("mulaw", 8000, 2).seconds(8000)
Decimal('0.5')
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from talktime.core.decimals import plain

#: Bytes per sample of one channel for each raw encoding, under the names providers use. Sources:
#: Deepgram's ``encoding`` parameter (linear16, linear32, mulaw, alaw); AssemblyAI's v3 streaming
#: ``encoding`` (pcm_s16le, pcm_mulaw); the pcm_* names that Cartesia and others use for the same formats.
BYTES_PER_SAMPLE: Final[Mapping[str, int]] = {
    "linear16": 2,
    "pcm_s16le": 2,
    "pcm_f16le": 2,
    "linear32": 4,
    "pcm_s32le": 4,
    "pcm_f32le": 4,
    "mulaw": 1,
    "pcm_mulaw": 1,
    "alaw": 1,
    "pcm_alaw": 1,
}
#: WAV ``fmt`` codes: 1 PCM, 3 IEEE float, 6 A-law, 7 mu-law (the bytes per sample come from the header).
_WAV_CODES: Final = {1: "linear", 3: "float", 6: "alaw", 7: "mulaw"}
_MICROSECOND: Final = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """A stream's audio: its encoding as the provider names it, samples per second, interleaved channels.

    ``sample_rate`` is None when the stream did not say; then its bytes cannot be turned into seconds.
    """

    encoding: str
    sample_rate: int | None
    channels: int = 1
    bytes_per_sample: int | None = None

    @property
    def bytes_per_second(self) -> int | None:
        """Bytes one second of this audio takes, all channels together; None for compressed encodings."""
        width = self.bytes_per_sample or BYTES_PER_SAMPLE.get(self.encoding.lower())
        if width is None or not self.sample_rate:
            return None
        return self.sample_rate * width * self.channels

    def seconds(self, size: int) -> Decimal | None:
        """Seconds of audio in ``size`` bytes, rounded half-even to the microsecond (None: not measurable)."""
        rate = self.bytes_per_second
        if rate is None:
            return None
        return plain((Decimal(size) / Decimal(rate)).quantize(_MICROSECOND, ROUND_HALF_EVEN))

    def describe(self) -> str:
        """``linear16 16000 Hz x1`` (for attributes and logs)."""
        rate = f"{self.sample_rate} Hz" if self.sample_rate else "rate unknown"
        return f"{self.encoding} {rate} x{self.channels}"


def _whole(value: object) -> int | None:
    """A positive whole number from a query value or JSON number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def format_from(values: Mapping[str, object], default: StreamFormat | None = None) -> StreamFormat | None:
    """The format named by ``encoding``, ``sample_rate`` and ``channels`` (a query string's or a settings
    message's values), each missing one taken from ``default``; None when no encoding is known.

    >>> format_from({"encoding": "linear16", "sample_rate": "16000", "channels": "2"})
    StreamFormat(encoding='linear16', sample_rate=16000, channels=2, bytes_per_sample=None)
    >>> format_from({"sample_rate": "8000"}, StreamFormat("pcm_s16le", 16000))
    StreamFormat(encoding='pcm_s16le', sample_rate=8000, channels=1, bytes_per_sample=None)
    """
    encoding = values.get("encoding")
    chosen = encoding.strip().lower() if isinstance(encoding, str) and encoding.strip() else None
    if chosen is None and default is None:
        return None
    return StreamFormat(
        encoding=chosen or (default.encoding if default else ""),
        sample_rate=_whole(values.get("sample_rate")) or (default.sample_rate if default else None),
        channels=_whole(values.get("channels")) or (default.channels if default else 1),
    )


def wav_header(data: bytes) -> tuple[StreamFormat, int] | None:
    """The format of a WAV (RIFF) stream and the length of its header, from the stream's first bytes.

    None when ``data`` does not start with a complete RIFF/WAVE header up to its ``data`` chunk.

    >>> fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    >>> wav_header(b"RIFF" + bytes(4) + b"WAVE" + fmt + b"data" + bytes(4))
    (StreamFormat(encoding='wav linear', sample_rate=8000, channels=1, bytes_per_sample=2), 44)
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, found = 12, None
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk == b"fmt " and body + 16 <= len(data):
            code, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if code == 0xFFFE and body + 26 <= len(data):  # WAVE_FORMAT_EXTENSIBLE: the real code follows
                code = struct.unpack_from("<H", data, body + 24)[0]
            name = _WAV_CODES.get(code)
            width = bits // 8 if name is not None and bits % 8 == 0 and bits else None
            found = StreamFormat(f"wav {name or f'format {code}'}", rate or None, channels or 1, width)
        elif chunk == b"data":
            return (found, body) if found is not None else None
        offset = body + size + (size & 1)
    return None
