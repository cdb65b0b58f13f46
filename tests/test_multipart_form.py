"""The streaming multipart parser and the .NET-style form binding behind POST /correspondence/upload."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from correspondence.kit.form import bind
from correspondence.kit.multipart import MultipartError, Part, boundary_of, parse_form

LISTS = frozenset({"recipients", "existingattachments"})
DICTS = frozenset({"correspondence.propertylist"})


def test_dotted_indexed_and_repeated_names_bind_like_dotnet() -> None:
    fields = [
        ("Correspondence.ResourceId", "r"),
        ("correspondence.content.attachments[1].fileName", "b.pdf"),
        ("correspondence.Content.Attachments[0].FileName", "a.pdf"),
        ("Recipients", "1"),
        ("recipients", "2"),
        ("correspondence.propertyList[CaseNo]", "7"),
        ("correspondence.propertyList.Other", "8"),
        ("correspondence.dueDateTime", ""),
        ("existingAttachments[0]", "x"),
    ]
    assert bind(fields, lists=LISTS, dicts=DICTS) == {
        "correspondence": {
            "resourceid": "r",
            "content": {"attachments": [{"filename": "a.pdf"}, {"filename": "b.pdf"}]},
            "propertylist": {"CaseNo": "7", "Other": "8"},
            "duedatetime": None,  # an empty value is null, as .NET binds it
        },
        "recipients": ["1", "2"],
        "existingattachments": ["x"],
    }


def test_odd_names_are_ignored_or_bound_harmlessly() -> None:
    deep = ".".join(["a"] * 500)
    bound = bind([(deep, "x"), ("a[", "y"), ("", "z"), ("correspondence", "leaf"), ("correspondence.x", "1")])
    assert bound == {"correspondence": {"x": "1"}}


def test_boundary_comes_from_the_content_type() -> None:
    assert boundary_of("multipart/form-data; boundary=abc") == b"abc"
    assert boundary_of('Multipart/Form-Data; boundary="a b"') == b"a b"
    assert boundary_of("application/json") is None
    assert boundary_of("multipart/form-data") is None


class Collect:
    def __init__(self) -> None:
        self.data = b""
        self.closed = self.aborted = False

    async def write(self, data: bytes) -> None:
        self.data += data

    async def close(self) -> None:
        self.closed = True

    async def abort(self) -> None:
        self.aborted = True


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(body), size):
        yield body[offset : offset + size]


BODY = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="Recipients"\r\n\r\n'
    b"0192:910753614\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="attachments"; filename="a.txt"; filename*=UTF-8\'\'%C3%A6.txt\r\n'
    b"Content-Type: text/plain\r\n\r\n"
    b"line one\r\nline two\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="title"\r\n\r\n'
    b"Tittel \xc3\xa6\xc3\xb8\xc3\xa5\r\n"
    b"--XyZ--\r\n"
)


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
async def test_files_stream_to_sinks_and_fields_are_collected(size: int) -> None:
    sinks: list[tuple[Part, Collect]] = []

    def open_file(part: Part) -> Collect:
        sink = Collect()
        sinks.append((part, sink))
        return sink

    fields = await parse_form(pieces(BODY, size), b"XyZ", open_file=open_file, max_field_bytes=1000)
    assert fields == [("Recipients", "0192:910753614"), ("title", "Tittel æøå")]
    [(part, sink)] = sinks
    assert (part.name, part.filename, part.content_type) == ("attachments", "æ.txt", "text/plain")
    assert sink.data == b"line one\r\nline two" and sink.closed and not sink.aborted


async def test_a_truncated_body_aborts_the_open_file() -> None:
    sinks: list[Collect] = []

    def open_file(part: Part) -> Collect:
        sinks.append(Collect())
        return sinks[-1]

    with pytest.raises(MultipartError):
        await parse_form(pieces(BODY[:230], 10), b"XyZ", open_file=open_file, max_field_bytes=1000)
    assert sinks and sinks[0].aborted and not sinks[0].closed
