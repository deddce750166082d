"""HTML pages and SOAP documents the emulator answers with.

They imitate the shapes clients parse (docs/protocol.md §2), and avoid what would confuse the Live
page check: every ``<form>`` has a ``name``, only the pages meant to carry a t value have an
element with ``id="t"``, and every Live error message contains an apostrophe, so its ``sErrTxt``
holds a backslash escape (the reference client only recognises messages with one).
"""

from __future__ import annotations

import html

__all__ = [
    "BAD_PASSWORD_MESSAGE",
    "join_page",
    "js_string",
    "live_confirm_page",
    "live_consent_page",
    "live_error_page",
    "live_opid_page",
    "live_sign_in_page",
    "live_two_factor_page",
    "plain_page",
    "refresh_error_page",
    "skype_token_page",
    "soap_fault",
    "soap_token_response",
]

#: The Live answer to a wrong password (the anchor is stripped by clients).
BAD_PASSWORD_MESSAGE = (
    "Your account or password is incorrect. If you don't remember your password, "
    '<a href="https://account.live.com/ResetPassword.aspx">reset it now.</a>'
)
_SOAP_NAMESPACES = (
    'xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" '
    'xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" '
    'xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" '
    'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" '
    'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" '
    'xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"'
)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def js_string(text: str) -> str:
    """``text`` escaped for a single-quoted JavaScript string."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html dir="ltr" lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def plain_page(title: str, text: str) -> str:
    """A page with a heading and one paragraph."""
    return _page(title, f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(text)}</p>")


def _ppft_tag(ppft: str) -> str:
    return f'<input type="hidden" name="PPFT" id="i0327" value="{ppft}"/>'


def live_sign_in_page(post_url: str, ppft: str) -> str:
    """The Live sign-in page: ``urlPost`` and the PPFT inside ``sFTTag`` (one line)."""
    server_data = (
        f"var ServerData = {{urlPost:'{js_string(post_url)}',"
        f"sFTTag:'{_ppft_tag(ppft)}',sCtx:'',iMaxPollAttempts:10,"
        "bShowBackButton:false,sSignInUsername:'',iDefaultLoginOptions:3};"
    )
    body = (
        f'<script type="text/javascript">{server_data}</script>\n'
        '<noscript><form name="f1" id="i0281" method="post" '
        f'action="{_attr(post_url)}"><p>JavaScript required to sign in.</p></form></noscript>'
    )
    return _page("Sign in to your Microsoft account", body)


def live_error_page(message: str, ppft: str) -> str:
    """The sign-in page again, with ``message`` (which must contain an apostrophe) in
    ``sErrTxt``."""
    server_data = (
        f"var ServerData = {{sErrTxt:'{js_string(message)}',"
        f"sFTTag:'{_ppft_tag(ppft)}',iErrorCode:80041012}};"
    )
    return _page("Sign in to your Microsoft account", f"<script>{server_data}</script>")


def live_opid_page(post_url: str, ppft: str) -> str:
    """The answer to good credentials: ``urlPost`` carries the ``opid`` for the confirm step."""
    server_data = (
        f"var ServerData = {{urlPost:'{js_string(post_url)}',sFT:'{ppft}',"
        "sCtx:'',bIsKmsiChecked:false,iPromptType:2};"
    )
    return _page("Continue", f'<script type="text/javascript">{server_data}</script>')


def live_two_factor_page(ppft: str, masked_email: str) -> str:
    """A request for a second factor: ``V`` is a non-empty list of proofs."""
    proof = (
        f"{{data:'{js_string(masked_email)}',type:1,display:'{js_string(masked_email)}',"
        "otcEnabled:true,otcSent:false,isLost:false}"
    )
    server_data = (
        f"var ServerData = {{sFT:'{ppft}',arrUserProofs:[{proof}],"
        f"V: [ {proof} ],iPollingInterval:5}};"
    )
    return _page("Help us protect your account", f"<script>{server_data}</script>")


def live_consent_page(action: str) -> str:
    """An account action the user must complete in a browser: the ``fmHF`` form."""
    body = (
        f'<form name="fmHF" id="fmHF" action="{_attr(action)}" method="post" target="_top">'
        '<input type="hidden" name="ipt" id="ipt" value="consent-required"/>'
        '<input type="hidden" name="pprid" id="pprid" value="2fa0c1d3e4b5a697"/></form>'
        '<script type="text/javascript">function OnBack(){}</script>'
    )
    return _page("Continue", body)


def live_confirm_page(action: str, t_value: str) -> str:
    """The page that ends the Live flow: a form with ``<input id="t">``."""
    body = (
        f'<form name="fmContinue" id="fmContinue" action="{_attr(action)}" method="post" '
        'target="_top">'
        f'<input type="hidden" name="t" id="t" value="{_attr(t_value)}"/>'
        "</form>"
        '<script type="text/javascript">document.fmContinue.submit();</script>'
    )
    return _page("Continue", body)


def refresh_error_page(message: str) -> str:
    """The refresh answer without a t value: just ``sErrTxt``."""
    return _page(
        "Sign in", f"<script>var ServerData = {{sErrTxt:'{js_string(message)}'}};</script>"
    )


def skype_token_page(action: str, token: str, expires_in: int) -> str:
    """The t-exchange answer: hidden ``skypetoken`` and ``expires_in`` inputs."""
    body = (
        f'<form name="redirect" id="redirect" action="{_attr(action)}" method="post">'
        f'<input type="hidden" name="skypetoken" value="{_attr(token)}"/>'
        f'<input type="hidden" name="expires_in" value="{expires_in}"/>'
        '<input type="hidden" name="state" value=""/>'
        "</form>"
    )
    return _page("Skype", body)


def join_page(meeting_id: str, join_url: str) -> str:
    """The guest join page (the cookies it sets are what matters)."""
    body = (
        f'<div id="join" data-meeting="{_attr(meeting_id)}">'
        f'<a href="{_attr(join_url)}">Join conversation</a></div>'
    )
    return _page("Join conversation", body)


def soap_token_response(security_token: str, created: str, expires: str) -> str:
    """A ``RequestSecurityTokenResponse`` whose ``BinarySecurityToken`` is ``security_token``."""
    token = html.escape(security_token, quote=False)
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<S:Envelope {_SOAP_NAMESPACES}>"
        "<S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion>"
        "<psf:authstate>0x48803</psf:authstate><psf:reqstatus>0x0</psf:reqstatus>"
        "<psf:serverInfo>skyproto-emulator</psf:serverInfo></psf:pp></S:Header>"
        "<S:Body><wst:RequestSecurityTokenResponseCollection>"
        "<wst:RequestSecurityTokenResponse>"
        "<wst:TokenType>urn:passport:compact</wst:TokenType>"
        "<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>wl.skype.com</wsa:Address>"
        "</wsa:EndpointReference></wsp:AppliesTo>"
        f"<wst:Lifetime><wsu:Created>{created}</wsu:Created>"
        f"<wsu:Expires>{expires}</wsu:Expires></wst:Lifetime>"
        "<wst:RequestedSecurityToken>"
        f'<wsse:BinarySecurityToken Id="Compact0">{token}</wsse:BinarySecurityToken>'
        "</wst:RequestedSecurityToken>"
        "<wst:RequestedAttachedReference><wsse:SecurityTokenReference>"
        '<wsse:Reference URI="/zYJ9vK0eQQ2EOBwFjzTCY3iMk4="/>'
        "</wsse:SecurityTokenReference></wst:RequestedAttachedReference>"
        "</wst:RequestSecurityTokenResponse>"
        "</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>"
    )


def soap_fault(code: str, text: str) -> str:
    """A SOAP 1.1 fault with ``faultcode`` and ``faultstring``."""
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<S:Envelope {_SOAP_NAMESPACES}>"
        "<S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion>"
        "<psf:authstate>0x80048800</psf:authstate><psf:reqstatus>0x80048821</psf:reqstatus>"
        "</psf:pp></S:Header>"
        "<S:Body><S:Fault>"
        f"<faultcode>{html.escape(code, quote=False)}</faultcode>"
        f"<faultstring>{html.escape(text, quote=False)}</faultstring>"
        "</S:Fault></S:Body></S:Envelope>"
    )
