"""yt-dlp's cookie jar <-> Netscape cookie-file lines for curl's cookie engine.

The engine loads the lines into curl (CURLOPT_COOKIELIST), so every cookie is
sent only to the hosts and paths it is scoped to, redirects included, and hands
back curl's jar after the transfer; new or changed cookies go back into
``ydl.cookiejar`` the way yt-dlp's own request handlers store Set-Cookie.
"""

from __future__ import annotations

import http.cookiejar
import time
from typing import Iterable

HTTPONLY_PREFIX = '#HttpOnly_'


def _flag(value: bool) -> str:
    return 'TRUE' if value else 'FALSE'


def to_netscape_lines(jar: Iterable[http.cookiejar.Cookie]) -> list[str]:
    """Every cookie of the jar, session and expired ones included (curl drops the expired)."""
    lines = []
    for cookie in jar:
        if not cookie.domain or '\t' in f'{cookie.name}{cookie.value}' or '\n' in f'{cookie.name}{cookie.value}':
            continue
        domain = cookie.domain
        include_subdomains = domain.startswith('.')
        if cookie.has_nonstandard_attr('HttpOnly') or cookie.has_nonstandard_attr('httponly'):
            domain = HTTPONLY_PREFIX + domain
        name, value = (cookie.name, cookie.value) if cookie.value is not None else ('', cookie.name)
        expires = int(cookie.expires) if cookie.expires else 0
        lines.append('\t'.join((
            domain, _flag(include_subdomains), cookie.path or '/', _flag(bool(cookie.secure)),
            str(expires), name, value or '')))
    return lines


def from_netscape_line(line: str) -> http.cookiejar.Cookie | None:
    """Parse one line of curl's jar; None for comments and malformed lines."""
    http_only = line.startswith(HTTPONLY_PREFIX)
    if http_only:
        line = line[len(HTTPONLY_PREFIX):]
    if not line.strip() or line.startswith('#'):
        return None
    fields = line.rstrip('\r\n').split('\t')
    if len(fields) == 6:  # no value
        fields.append('')
    if len(fields) != 7:
        return None
    domain, _subdomains, path, secure, expires_text, name, value = fields
    try:
        expires: int | None = int(float(expires_text)) if expires_text else 0
    except ValueError:
        return None
    if not expires:
        expires = None
    initial_dot = domain.startswith('.')
    return http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False,
        domain=domain, domain_specified=initial_dot, domain_initial_dot=initial_dot,
        path=path or '/', path_specified=True, secure=secure.upper() == 'TRUE',
        expires=expires, discard=expires is None, comment=None, comment_url=None,
        rest={'HttpOnly': ''} if http_only else {})


def _identity(cookie: http.cookiejar.Cookie) -> tuple[str, str, str, str, int]:
    return (cookie.domain.lstrip('.').lower(), cookie.path or '/', cookie.name,
            cookie.value or '', int(cookie.expires or 0))


def store_lines(jar: http.cookiejar.CookieJar, lines: Iterable[str], sent: Iterable[str] = ()) -> int:
    """Put the cookies of ``lines`` that are new or changed since ``sent`` into ``jar``.

    A cookie whose expiry is in the past is removed from the jar, as a
    Set-Cookie with a past Expires does in yt-dlp.  Returns how many changed.
    """
    before = {_identity(c) for c in map(from_netscape_line, sent) if c is not None}
    changed = 0
    now = time.time()
    for line in lines:
        cookie = from_netscape_line(line)
        if cookie is None or _identity(cookie) in before:
            continue
        if cookie.expires is not None and cookie.expires < now:
            try:
                jar.clear(cookie.domain, cookie.path, cookie.name)
            except KeyError:
                pass
        else:
            jar.set_cookie(cookie)
        changed += 1
    return changed
