"""yt-dlp's networking params -> keyword arguments of ``AsyncDownloadEngine.submit``.

yt-dlp normally applies these in its request handlers (``build_request_director``);
the engine bypasses that layer, so each one is mapped here: headers (with
``Accept-Encoding: identity``, as HttpFD sends), proxy (``--proxy``, the
environment, ``Ytdl-Request-Proxy``; socks5 means socks5h as in yt-dlp),
``--source-address``, ``--no-check-certificates``, ``--client-certificate*``,
and the CA bundle yt-dlp itself uses (certifi unless ``--compat-options no-certifi``,
else the file Python's ssl reads).
"""

from __future__ import annotations

import ssl
import urllib.parse
from typing import Any, Mapping

from . import internals

#: Params the engine cannot honour; a download that needs one goes to yt-dlp's downloader.
UNSUPPORTED_PARAMS: dict[str, str] = {
    'legacyserverconnect': '--legacy-server-connect has no libcurl equivalent in the engine',
}


def request_headers(info_dict: Mapping[str, Any]) -> Any:
    """HttpFD's headers: ``Accept-Encoding: identity`` then the format's http_headers."""
    header_dict = internals.load('yt_dlp.utils.networking:HTTPHeaderDict')
    return header_dict({'Accept-Encoding': 'identity'}, info_dict.get('http_headers') or {})


def split_proxy_headers(headers: Any) -> str | None:
    """Remove yt-dlp's internal pseudo-headers; return a per-request proxy if one was given."""
    proxy = headers.pop('Ytdl-Request-Proxy', None)
    internals.load('yt_dlp.utils.networking:clean_headers')(headers)
    return proxy


def select_proxy(ydl: Any, url: str, request_proxy: str | None) -> str | None:
    """The proxy yt-dlp would use for ``url``: '' means none (not even from the environment)."""
    header_dict = internals.load('yt_dlp.utils.networking:HTTPHeaderDict')
    clean_proxies = internals.load('yt_dlp.utils.networking:clean_proxies')
    ytdlp_select = internals.load('yt_dlp.utils.networking:select_proxy')
    proxies = dict(getattr(ydl, 'proxies', None) or {})
    if not proxies and not request_proxy:
        return None  # nothing configured anywhere: libcurl's defaults are the same
    headers = header_dict({'Ytdl-Request-Proxy': request_proxy} if request_proxy else {})
    clean_proxies(proxies, headers)
    return ytdlp_select(url, proxies) or ''


def _certifi_bundle(params: Mapping[str, Any]) -> str | None:
    """certifi's bundle when yt-dlp uses it (it loads certifi, and no ``no-certifi``)."""
    if 'no-certifi' in (params.get('compat_opts') or ()):
        return None
    try:
        certifi = internals.load('yt_dlp.dependencies:certifi')
    except internals.InternalMissing:
        return None
    return None if certifi is None else str(certifi.where())


def ca_file(params: Mapping[str, Any]) -> str | None:
    """The CA file yt-dlp itself trusts: certifi's bundle when it loads certifi, else
    the one Python's ssl reads (SSL_CERT_FILE or OpenSSL's default), when it exists.

    None leaves libcurl's compiled-in path, which in a wheel is the build machine's
    (Debian's /etc/ssl/certs/ca-certificates.crt; Fedora keeps its store elsewhere).
    """
    return _certifi_bundle(params) or ssl.get_default_verify_paths().cafile


def ca_path(params: Mapping[str, Any]) -> str | None:
    """The hashed CA directory yt-dlp trusts beside the file: without certifi, the
    one Python's ssl reads (SSL_CERT_DIR or OpenSSL's default), when it exists.

    With certifi yt-dlp trusts certifi's bundle alone; libcurl then keeps its
    compiled-in directory (Debian's /etc/ssl/certs), as before.
    """
    return None if _certifi_bundle(params) else ssl.get_default_verify_paths().capath


def tls_options(params: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {'verify': not params.get('nocheckcertificate')}
    if options['verify']:
        bundle = ca_file(params)
        if bundle:
            options['ca_file'] = bundle
        directory = ca_path(params)
        if directory:
            options['ca_path'] = directory
    if params.get('client_certificate'):
        options['client_cert'] = params['client_certificate']
        if params.get('client_certificate_key'):
            options['client_key'] = params['client_certificate_key']
        if params.get('client_certificate_password'):
            options['client_key_password'] = params['client_certificate_password']
    return options


def url_credentials(url: str, headers: Any) -> str:
    """YoutubeDL.urlopen's ``user:pass@`` in a URL: it leaves the URL and becomes the
    ``Authorization: Basic`` header (replacing one the format has), built from the
    userinfo as written (``p%40ss`` stays ``p%40ss``; libcurl would decode it).
    ``headers`` (an HTTPHeaderDict) is updated; returns the URL without userinfo."""
    extract_basic_auth = internals.load('yt_dlp.utils:extract_basic_auth')
    bare, authorization = extract_basic_auth(url)
    if authorization is None:
        return url
    headers['Authorization'] = authorization
    return bare


def request_handler(ydl: Any, url: str) -> str | None:
    """The RH_KEY of the handler yt-dlp's request director sends a GET of ``url``
    through (the most preferred one that validates it), or None."""
    try:
        director = ydl._request_director
        request = internals.load('yt_dlp.networking:Request')(url)
        unsupported = internals.load('yt_dlp.networking.exceptions:UnsupportedRequest')
        handlers = sorted(director.handlers.values(), reverse=True,
                          key=lambda rh: sum(pref(rh, request) for pref in director.preferences))
    except Exception:
        return None
    for handler in handlers:
        try:
            handler.validate(request)
        except unsupported:
            continue
        except Exception:
            return None
        return str(handler.RH_KEY)
    return None


#: yt-dlp's request handlers that keep the Authorization header on a redirect to
#: another host: urllib's RedirectHandler drops only Cookie (the jar adds the new
#: host's).  requests' Session.rebuild_auth drops Authorization when the host, port
#: or scheme changes, as libcurl does by default; curl_cffi is libcurl.  The same
#: in 2025.05.22, 2026.10.26 (nightly) and 2026.11.23.
AUTH_TO_OTHER_HOSTS_HANDLERS = frozenset({'Urllib'})


def submit_options(ydl: Any, params: Mapping[str, Any], url: str, request_proxy: str | None) -> dict[str, Any]:
    """Everything for ``submit`` that comes from params (not the range/file arguments)."""
    options = tls_options(params)
    # the plugin writes yt-dlp's own .part/.part-async names itself: the engine
    # writes into them as given (no temporary name and rename of its own)
    options['in_place'] = True
    if request_handler(ydl, url) in AUTH_TO_OTHER_HOSTS_HANDLERS:
        options['auth_to_other_hosts'] = True
    proxy = select_proxy(ydl, url, request_proxy)
    if proxy is not None:
        options['proxy'] = proxy
    if params.get('source_address'):
        options['source_address'] = params['source_address']
    return options


def unsupported_reason(params: Mapping[str, Any], info_dict: Mapping[str, Any]) -> str | None:
    """Why the engine cannot do this download the way yt-dlp would, or None."""
    for key, reason in UNSUPPORTED_PARAMS.items():
        if params.get(key):
            return reason
    if info_dict.get('request_data') is not None:
        return 'the format needs a request body (POST), which the engine does not send'
    for name, value in (info_dict.get('http_headers') or {}).items():
        try:
            str(value).encode('latin-1')
        except UnicodeEncodeError:
            return (f'the {name} header has characters outside ISO-8859-1, which yt-dlp\'s request '
                    'handlers cannot send either')
    headers = {k.lower() for k in (info_dict.get('http_headers') or {})}
    if 'cookie' in headers and ('authorization' in headers or '@' in urllib.parse.urlsplit(
            str(info_dict.get('url') or '')).netloc):
        return ('the format has a Cookie header beside credentials; yt-dlp drops the one on a redirect '
                'and may keep the other, libcurl keeps or drops both')
    return None
