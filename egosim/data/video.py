"""H.264 camera streams with PyAV: written frame by frame while an episode plays, read back by index.

Frame k of an episode has pts k in a 1/fps time base, so its timestamp is k / fps, as LeRobot's
`from_timestamp + frame_index / fps` lookup expects.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.data.format import DatasetError


class VideoWriter:
    """Encodes uint8 RGB frames (H, W, 3) to an mp4 (libx264, yuv420p) as they arrive.

    Streaming keeps memory flat: an episode's frames are never all held at once. H and W must be even
    (yuv420p subsamples chroma by 2). A keyframe every `gop` frames (2, LeRobot's default `g`) lets a
    training loader decode any single frame after a short seek.
    """

    def __init__(self, path: str | os.PathLike[str], fps: int, height: int, width: int, crf: int = 23,
                 preset: str = "veryfast", gop: int = 2) -> None:
        import av

        if height % 2 or width % 2:
            raise DatasetError(f"video frames must have even height and width for yuv420p, got {height}x{width}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=fps)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = Fraction(1, fps)
        self._stream.options = {"crf": str(crf), "preset": preset, "g": str(gop)}
        self._n = 0
        self._shape = (height, width, 3)

    def append(self, frame: NDArray[np.uint8]) -> None:
        import av

        if frame.shape != self._shape:
            raise DatasetError(f"video frame has shape {frame.shape}; this stream takes {self._shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self._n
        self._n += 1
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    @property
    def frames(self) -> int:
        return self._n

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


def read_frames(path: str | os.PathLike[str], start: int = 0, stop: int | None = None) -> NDArray[np.uint8]:
    """Decodes frames [start, stop) of an mp4 as uint8 RGB (N, H, W, 3)."""
    import av

    out: list[NDArray[np.uint8]] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for k, frame in enumerate(container.decode(stream)):
                if stop is not None and k >= stop:
                    break
                if k >= start:
                    out.append(frame.to_ndarray(format="rgb24"))
    except (OSError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
        raise DatasetError(f"cannot decode video {path}: {exc}") from None
    if not out:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(out)


def read_frame(path: str | os.PathLike[str], index: int) -> NDArray[np.uint8]:
    """Decodes frame `index` (timestamp index / fps) of an mp4: seek to the keyframe before it, decode forward."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.base_rate)
            target = index / fps
            half = 0.5 / fps
            container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                t = frame.time
                if t is None or t < target - half:
                    continue
                if t > target + half:
                    break
                return frame.to_ndarray(format="rgb24")
    except (OSError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
        raise DatasetError(f"cannot decode video {path}: {exc}") from None
    raise DatasetError(f"{path} has no frame {index}")


def probe(path: str | os.PathLike[str], count: bool = True) -> dict[str, Any]:
    """Codec, pixel format, size, fps and (decoded) frame count of an mp4's first video stream."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetError(f"{path} has no video stream")
            s = container.streams.video[0]
            info = {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "height": s.height,
                    "width": s.width, "fps": float(s.average_rate) if s.average_rate else 0.0}
            if count:
                info["frames"] = sum(1 for _ in container.decode(s))
            return info
    except (OSError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
        raise DatasetError(f"cannot read video {path}: {exc}") from None
