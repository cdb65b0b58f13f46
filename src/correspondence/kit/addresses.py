"""Which network addresses an outbound call made on a stranger's behalf (a webhook) may reach.

Two questions, asked at two times: `numeric_host` reads a URL's host the way the C resolver would
(so `127.1`, `2130706433`, `0x7f.0.0.1` and `0` are recognised as the addresses they are), and
`forbidden` says whether an address is one of this machine's or its private network's."""

from __future__ import annotations

import ipaddress
import re

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# inet_aton's number forms: 0x hex, leading-zero octal, decimal.
_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")

# NAT64 prefixes (RFC 6052, RFC 8215): the last 32 bits are an IPv4 address a gateway connects to.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class NotAnAddress(ValueError):
    """A host that looks numeric (its last label is a number) but is no address: the URL standard
    calls such a host invalid, and resolvers disagree on what it means."""


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address glibc's inet_aton reads from `host` (1 to 4 parts, the last filling the
    remaining bytes), or None when it reads none."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(p) for p in parts):
        return None
    values = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for i, v in enumerate(head):
        number += v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def numeric_host(host: str) -> Address | None:
    """The address a URL host names by number, or None for a name.

    Raises NotAnAddress for a host whose last label is numeric but which no resolver form reads
    as one address (`1.2.3.4.5`, `127.0.0.256`, `08.1`)."""
    bare = host.strip("[]")
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare)
        except ValueError:
            raise NotAnAddress(host) from None
    bare = bare.removesuffix(".")
    if not _NUMERIC_LABEL.fullmatch(bare.rsplit(".", 1)[-1]):
        return None
    found = _inet_aton(bare)
    if found is None:
        raise NotAnAddress(host)
    return found


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def forbidden(address: Address) -> bool:
    """True for loopback, private, shared (CGNAT), link-local, multicast, unspecified and reserved
    addresses, and for IPv6 forms that carry such an IPv4 address inside."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return True
        inner = _embedded_v4(address)
        if inner is not None and forbidden(inner):
            return True
        if address.teredo is not None:
            return True  # a tunnel to wherever its embedded server and client say
    return (
        not address.is_global
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def forbidden_text(text: str) -> bool:
    """`forbidden` for an address as a resolver prints it; anything unreadable is forbidden."""
    try:
        return forbidden(ipaddress.ip_address(text))
    except ValueError:
        return True
