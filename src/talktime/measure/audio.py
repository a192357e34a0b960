"""Audio files in: their samples block by block, and resampling for a detector. The IO edge of measuring.

Reading is libsndfile's, through ``soundfile``: WAV (PCM 8 to 32 bit, float), FLAC, OGG/Vorbis and the other
formats it reads, any rate, any number of channels. Samples come as 32-bit floats in blocks, so a file of
any length is read in bounded memory. The duration is counted from the frames actually read (a frame is one
sample per channel), never from a header or a float.

A file that cannot be read is an :class:`~talktime.errors.InputError` naming the file and why: not audio,
a header that libsndfile refuses, or a WAV whose header disagrees with its data (cut short, or never
finalised), which libsndfile would otherwise read silently as a shorter file.

Resampling, when the detector does not take the file's rate, is ``soxr`` (libsoxr's "HQ" recipe: 20-bit
precision, linear phase), streamed over the blocks; each channel is resampled on its own.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from talktime.errors import InputError
from talktime.measure.vad import Samples

#: Frames read at a time: about 1.4 s at 48 kHz; memory stays bounded whatever the file's length.
BLOCK_FRAMES: Final = 1 << 16
_EXTRA_HINT: Final = "install the audio extra: pip install 'talktime[audio]'"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TO_THE_END: Final = 0xFFFFFFFF  # a streaming writer's data size: the audio runs to the end of the file
_WAV_FIX: Final = "re-export it, or fit the header to the data: sox --ignore-length in.wav out.wav"


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What the file's header says: rate, channels and encoding (``WAV PCM_16``)."""

    sample_rate: int
    channels: int
    encoding: str


@dataclass(slots=True)
class AudioReader:
    """An open audio file: its format, and its samples as ``(frames, channels)`` float blocks."""

    path: Path
    format: AudioFormat
    _handle: Any

    def blocks(self) -> Iterator[Samples]:
        try:
            for block in self._handle.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                yield np.asarray(block, dtype=np.float32)
        except RuntimeError as error:  # libsndfile's errors mid-file
            raise unreadable(self.path, error) from None


def unreadable(path: Path, why: object) -> InputError:
    """The error for a file that is not audio we can read: the file, then libsndfile's reason."""
    reason = str(why).replace(f"Error opening {str(path)!r}: ", "").strip() or "unknown error"
    return InputError(f"{path}: cannot read it as audio: {reason}")


@contextmanager
def open_audio(path: Path) -> Iterator[AudioReader]:
    """The file open for reading, or an error naming it and why it cannot be read."""
    try:
        import soundfile
    except ImportError:
        raise InputError(f"talktime measure needs soundfile: {_EXTRA_HINT}") from None
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    _check_wav_length(path)
    try:
        handle = soundfile.SoundFile(str(path))
    except RuntimeError as error:
        raise unreadable(path, error) from None
    with handle:
        audio_format = AudioFormat(
            int(handle.samplerate), int(handle.channels), f"{handle.format} {handle.subtype}"
        )
        if audio_format.sample_rate <= 0 or audio_format.channels <= 0:
            raise unreadable(
                path, f"header says {audio_format.sample_rate} Hz, {audio_format.channels} channels"
            )
        yield AudioReader(path, audio_format, handle)


def _check_wav_length(path: Path) -> None:
    """Refuse a RIFF WAV whose ``data`` chunk size disagrees with the file, which libsndfile would read
    silently as a shorter file: more bytes declared than the file holds (cut short), or none declared with
    audio after it (a recording whose header was never finalised). ``0xFFFFFFFF`` ("to the end") is fine."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(12)[:4] != b"RIFF":
            return  # not a RIFF WAV (RF64, FLAC, ...): libsndfile checks it
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id != b"data":
                offset += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to an even size
                continue
            held = size - offset - 8
            if chunk_size == 0 and held > 0 and not _only_chunks(handle, offset + 8, size):
                raise InputError(
                    f"{path}: its WAV header declares no audio but the file holds {held} bytes after it "
                    f"(a recording never finalised); {_WAV_FIX}"
                )
            if chunk_size != _TO_THE_END and chunk_size > held:
                raise InputError(
                    f"{path}: cut short: its WAV header declares {chunk_size} bytes of audio but the file "
                    f"holds {held}; {_WAV_FIX}"
                )
            return


def _only_chunks(handle: BinaryIO, offset: int, size: int) -> bool:
    """Whether the bytes from ``offset`` to ``size`` are whole RIFF chunks (a LIST after an empty data)."""
    while offset + 8 <= size:
        handle.seek(offset)
        chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
        if not all(32 <= byte < 127 for byte in chunk_id):
            return False
        offset += 8 + chunk_size + (chunk_size & 1)
    return offset == size


class Resampler:
    """Streamed sample-rate conversion of ``(frames, channels)`` blocks; the identity when rates agree."""

    def __init__(self, source_rate: int, target_rate: int, channels: int) -> None:
        self._stream: Any = None
        if source_rate != target_rate:
            try:
                import soxr
            except ImportError:
                raise InputError(f"resampling {source_rate} Hz needs soxr: {_EXTRA_HINT}") from None
            self._stream = soxr.ResampleStream(
                source_rate, target_rate, channels, dtype="float32", quality="HQ"
            )
        self._channels = channels

    def __call__(self, block: Samples) -> Samples:
        if self._stream is None:
            return block
        return np.asarray(self._stream.resample_chunk(np.ascontiguousarray(block)), dtype=np.float32)

    def flush(self) -> Samples:
        """What the resampler still holds, once the last block is in."""
        if self._stream is None:
            return np.zeros((0, self._channels), dtype=np.float32)
        empty = np.zeros((0, self._channels), dtype=np.float32)
        return np.asarray(self._stream.resample_chunk(empty, last=True), dtype=np.float32)


def modified_at(path: Path) -> datetime:
    """The file's modification time in UTC, to the microsecond (nanoseconds truncated, no float)."""
    return _EPOCH + timedelta(microseconds=path.stat().st_mtime_ns // 1000)
