"""Receive an uploaded video onto disk in chunks, counting bytes, never whole in memory.

FastAPI's `UploadFile` parses the entire request before the endpoint sees it and has no
size limit for files, so the limit could only be checked after the whole body was taken.
Here the request stream is fed to python-multipart's streaming parser chunk by chunk: the
declared Content-Length is checked first, and the bytes actually received are counted as
they are written, because a client can lie about the length or send it chunked.

The file goes into the server's private temp dir under a generated name; the client's file
name is kept only as a label for the result (and for a whitelisted extension, which helps
FFmpeg guess raw formats), never as a path.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from vidclass.serve.errors import RequestError
from vidclass.video.probe import VIDEO_EXTENSIONS

FILE_FIELD = "video"
MAX_FIELD_BYTES = 4096  # option fields are short numbers or names
MAX_FIELDS = 32


@dataclass
class Upload:
    """A video received to disk, the client's name for it and the form's other fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def too_large(limit: int) -> RequestError:
    return RequestError(
        413,
        f"the upload is larger than this server's limit of {limit / 1e6:.0f} MB; "
        "send a shorter or more compressed video, or start the server with a larger "
        "--max-upload-mb",
    )


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if suffix in VIDEO_EXTENSIONS else ""


async def receive_upload(request: Request, directory: Path, max_bytes: int) -> Upload:
    """Stream the request's video to `directory`; RequestError 413/400/422 when it can't be.

    Accepts `multipart/form-data` with the video in the field `video` (other fields are
    options) or a raw body (any other content type, e.g. `video/mp4`).
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes + 64 * 1024:  # multipart framing adds a little
                raise too_large(max_bytes)
        except ValueError:
            raise RequestError(400, "invalid Content-Length header") from None
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    path = directory / uuid.uuid4().hex
    out = open(path, "wb")  # noqa: SIM115 - closed in finally; deleted on any failure
    try:
        if kind == b"multipart/form-data":
            upload = await _receive_multipart(request, params, out, path, max_bytes)
        else:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                out.write(chunk)
            name = request.headers.get("x-filename", "upload")
            upload = Upload(path, name, size)
        if upload.size == 0:
            raise RequestError(
                422,
                f"no video received: send the file in the multipart field {FILE_FIELD!r} "
                "(curl -F video=@clip.mp4) or as the raw request body",
            )
    except ClientDisconnect:
        out.close()
        path.unlink(missing_ok=True)
        raise RequestError(400, "the client closed the connection during the upload") from None
    except BaseException:
        out.close()
        path.unlink(missing_ok=True)
        raise
    out.close()
    suffix = _suffix(upload.filename)
    if suffix:
        final = path.with_suffix(suffix)
        os.replace(path, final)
        upload.path = final
    return upload


async def _receive_multipart(request: Request, params: dict, out, path: Path, max_bytes: int):
    boundary = params.get(b"boundary")
    if not boundary:
        raise RequestError(400, "multipart request without a boundary")
    state: dict = {"headers": {}, "name": None, "is_file": False, "data": bytearray()}
    fields: dict[str, str] = {}
    found = {"file": False, "filename": "upload", "size": 0}

    def on_part_begin() -> None:
        state.update(headers={}, name=None, is_file=False, data=bytearray(), hname=b"", hval=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hval"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].lower()] = state["hval"]
        state["hname"], state["hval"] = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if b"filename" in opts:
            if name != FILE_FIELD or found["file"]:
                raise RequestError(
                    422, f"send exactly one file, in the multipart field {FILE_FIELD!r}"
                )
            found["file"] = True
            state["is_file"] = True
            found["filename"] = opts[b"filename"].decode("utf-8", "replace") or "upload"
        elif len(fields) >= MAX_FIELDS:
            raise RequestError(422, "too many form fields")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["is_file"]:
            found["size"] += end - start
            if found["size"] > max_bytes:
                raise too_large(max_bytes)
            out.write(data[start:end])
        else:
            state["data"] += data[start:end]
            if len(state["data"]) > MAX_FIELD_BYTES:
                raise RequestError(422, f"form field {state['name']!r} is too long")

    def on_part_end() -> None:
        if not state["is_file"] and state["name"]:
            fields[state["name"]] = state["data"].decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except RequestError:
        raise
    except ClientDisconnect:
        raise
    except Exception as exc:
        raise RequestError(400, f"malformed multipart body ({exc})") from None
    if not found["file"]:
        raise RequestError(
            422, f"no file in the multipart field {FILE_FIELD!r}: use curl -F video=@clip.mp4"
        )
    return Upload(path, found["filename"], found["size"], fields)
