r"""HTML pages and SOAP documents the emulator answers with.

They imitate the shapes of the real services (docs/protocol.md §2), roughness included, so that
clients are tested against what they will meet:

* Every Live page keeps its state in a one-line ``ServerData`` JavaScript object, as login.live.com
  does, and every one carries an error text, empty when there is no error (``sErrTxt:''``). The
  object has many keys a client must skip (``sCtx``, ``iLoginStage``, nested ``oStrings``, minified
  booleans ``!0``/``!1``, ``\/`` and ``\u`` escapes) and sits inside a ``//<![CDATA[`` block.
* The PPFT is an ``<input>`` written inside a JavaScript string (``sFTTag:'<input … />'``), on
  one line with double-quoted attributes, so a browser (and an HTML parser) does not see it as an
  element; ``urlPost`` names the ``post.srf`` URL, and after good credentials it carries the
  ``opid``.
* An error message is written in its escaped form: ``\'`` for an apostrophe, ``\"`` for the quotes
  of an attribute and ``<\/`` for a closing tag. The reference client recognises a Live message
  only when it holds a backslash escape, so every Live error message here has an apostrophe.

What would confuse the Live page check of a correct client is avoided: every ``<form>`` has a
``name``, only the pages meant to carry a t value have an element with ``id="t"``, no key is
``V`` except in the two-factor page, and no text says ``opid=`` except the ``urlPost`` of the
answer to good credentials.

SOAP answers carry the header and the extra security-token response a real ``RST.srf`` answer
has: a ``psf:pp`` header with credential properties, namespace declarations repeated on inner
elements, and a ``Passport.NET/tb`` response (an encrypted token and a proof key, neither a
``BinarySecurityToken``) before the one for ``wl.skype.com``.

Internal to the emulator; nothing here is public API.
"""

from __future__ import annotations

import html

__all__: list[str] = []

#: The Live answer to a wrong password (the anchor is stripped by clients).
BAD_PASSWORD_MESSAGE = (
    "Your account or password is incorrect. If you don't remember your password, "
    '<a href="https://account.live.com/ResetPassword.aspx?wreply=https://login.live.com'
    '&amp;id=38936&amp;mkt=EN-US">reset it now.</a>'
)
_SOAP_NS = 'xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"'
_PSF_NS = 'xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"'
_RSTR_NAMESPACES = (
    'xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" '
    'xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" '
    'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" '
    'xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" '
    'xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" '
    'xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"'
)
_WSA_NS = 'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"'
_CDN = r"https:\/\/logincdn.msauth.net\/16.000\/"
_LIVE_TITLE = "Sign in to your Microsoft account"


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def js_string(text: str) -> str:
    """``text`` escaped for a single-quoted JavaScript string inside a ``<script>`` element.

    Backslashes, apostrophes and newlines are escaped as JavaScript needs, double quotes as
    ``\\"`` and every ``</`` as ``<\\/`` (the forms Live uses; both are legal and change nothing).
    """
    return (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("</", "<\\/")
    )


def _page(title: str, body: str, head: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html dir="ltr" lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{head}</head>\n<body>\n{body}\n</body></html>\n"
    )


def plain_page(title: str, text: str) -> str:
    """A page with a heading and one paragraph."""
    return _page(title, f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(text)}</p>")


def _ppft_tag(ppft: str) -> str:
    return f'<input type="hidden" name="PPFT" id="i0327" value="{ppft}"/>'


def _server_data(*entries: str, error: str = "", stage: int = 1) -> str:
    """A one-line ``ServerData`` object: ``entries`` (``key:value`` JavaScript) among the keys
    every Live page has, ``sErrTxt`` (escaped ``error``) among them."""
    common = (
        f"sErrTxt:'{js_string(error)}'",
        f"iLoginStage:{stage}",
        "sCtx:''",
        "sPOST_Username:''",
        f"urlCdn:'{_CDN}'",
        "iMaxStackForKnockoutAsyncComponents:1e4",
        "fShowButtons:!0",
        "fIsFidoSupported:!1",
        "bIsKmsiChecked:false",
        "arrProofData:{}",
        "str:[]",
        "oStrings:{sTitle:'Sign in',sPasswordHint:'Password',sMore:'More \\u2026',"
        "sBack:'\\x3c Back'}",
        "sPageId:'i5030'",
    )
    body = ",".join((*entries[:1], *common, *entries[1:]))
    return f"var ServerData = {{{body}}};"


def _script(*lines: str) -> str:
    inner = "\n".join(lines)
    return f'<script type="text/javascript">//<![CDATA[\n{inner}\n//]]></script>'


def _live_page(title: str, server_data: str, body: str = "") -> str:
    head = (
        '<meta http-equiv="X-UA-Compatible" content="IE=Edge"/>'
        "<meta name='viewport' content='width=device-width, initial-scale=1.0'>"
        '<link rel="shortcut icon" href="https://logincdn.msauth.net/16.000/images/favicon.ico"/>'
    )
    scripts = (
        _script(server_data, "if(!window.$Do){window.$Do={}};")
        + "\n"
        + _script("function OnBack(){}", "var g_iSRSFailed=0,g_sSRSSuccess='';")
    )
    return _page(title, f"{scripts}\n{body}", head)


def live_sign_in_page(post_url: str, ppft: str, context: str) -> str:
    """The Live sign-in page: ``urlPost`` and the PPFT inside ``sFTTag`` (one line)."""
    server_data = _server_data(
        f"urlPost:'{js_string(post_url)}'",
        f"sFTTag:'{_ppft_tag(ppft)}'",
        f"sFT:'{ppft}'",
        "sFTName:'PPFT'",
        f"sUnauthSessionID:'{context}'",
        "iDefaultLoginOptions:3",
        "bShowBackButton:!1",
        "urlMsaSignUp:'https:\\/\\/signup.live.com\\/signup?lic=1'",
        stage=1,
    )
    body = (
        '<noscript><FORM NAME="f1" id="i0281" METHOD="post" '
        f'ACTION="{_attr(post_url)}"><p>JavaScript required to sign in.</p></FORM></noscript>\n'
        '<div id="i0272" data-bind="component: { name: \'master-page\' }"></div>'
    )
    return _live_page(_LIVE_TITLE, server_data, body)


def live_error_page(message: str, ppft: str, context: str) -> str:
    """The sign-in page again, with ``message`` (which must contain an apostrophe) in
    ``sErrTxt``, written in its escaped form."""
    server_data = _server_data(
        f"sFTTag:'{_ppft_tag(ppft)}'",
        "sErrorCode:'80041012'",
        f"sUnauthSessionID:'{context}'",
        "iDefaultLoginOptions:3",
        error=message,
        stage=2,
    )
    return _live_page(_LIVE_TITLE, server_data)


def live_opid_page(post_url: str, ppft: str, context: str) -> str:
    """The answer to good credentials ("Stay signed in?"): ``urlPost`` carries the ``opid``."""
    server_data = _server_data(
        f"urlPost:'{js_string(post_url)}'",
        f"sFT:'{ppft}'",
        f"sFTTag:'{_ppft_tag(ppft)}'",
        f"sUnauthSessionID:'{context}'",
        "iPromptType:2",
        "fShowKmsiCheckbox:!0",
        stage=3,
    )
    body = '<div id="i0272" data-bind="component: { name: \'kmsi-view\' }"></div>'
    return _live_page("Stay signed in?", server_data, body)


def live_two_factor_page(ppft: str, masked_email: str, context: str) -> str:
    """A request for a second factor: ``V`` is a non-empty list of proofs."""
    proof = (
        f"{{data:'{js_string(masked_email)}',type:1,display:'{js_string(masked_email)}',"
        "otcEnabled:!0,otcSent:!1,isLost:!1}"
    )
    server_data = _server_data(
        f"sFT:'{ppft}'",
        f"arrUserProofs:[{proof}]",
        f"V: [ {proof} ]",
        f"sUnauthSessionID:'{context}'",
        "iPollingInterval:5",
        stage=4,
    )
    return _live_page("Help us protect your account", server_data)


def live_consent_page(action: str) -> str:
    """An account action the user must complete in a browser: the ``fmHF`` form."""
    body = (
        f'<form name="fmHF" id="fmHF" action="{_attr(action)}" method="post" target="_top">'
        '<input type="hidden" name="ipt" id="ipt" value="consent-required"/>'
        '<input type="hidden" name="pprid" id="pprid" value="2fa0c1d3e4b5a697"/></form>'
    )
    return _live_page("Continue", _server_data("sPageId:'i5245'", stage=5), body)


def live_confirm_page(action: str, t_value: str) -> str:
    """The page that ends the Live flow: the self-submitting ``fmHF`` form with
    ``<input id="t">`` (and, as on every Live page, an empty ``sErrTxt``)."""
    body = (
        f'<form name="fmHF" id="fmHF" action="{_attr(action)}" method="post" target="_top">'
        f'<input type="hidden" name="t" id="t" value="{_attr(t_value)}"/>'
        "</form>"
        '<script type="text/javascript">function DoSubmit(){var subt=false;'
        "if(!subt){subt=true;document.fmHF.submit();}}DoSubmit();</script>"
    )
    return _live_page("Continue", _server_data("sPageId:'i5246'", stage=6), body)


def refresh_error_page(message: str) -> str:
    """The refresh answer without a t value: ``sErrTxt`` with ``message``."""
    return _live_page("Sign in", _server_data("sPageId:'i5030'", error=message, stage=1))


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


def _psf_header(authstate: str, reqstatus: str, server_time: str, extra: str = "") -> str:
    return (
        f"<S:Header><psf:pp {_PSF_NS}><psf:serverVersion>1</psf:serverVersion>"
        f"<psf:authstate>{authstate}</psf:authstate><psf:reqstatus>{reqstatus}</psf:reqstatus>"
        f'<psf:serverInfo Path="Live1" RollingUpgradeState="ExclusiveNew" LocVersion="0" '
        f'ServerTime="{server_time}" BuildVersion="16.0.30106.4">skyproto-emulator</psf:serverInfo>'
        f"<psf:cookies/>{extra}<psf:response/></psf:pp></S:Header>"
    )


def soap_token_response(security_token: str, created: str, expires: str) -> str:
    """A ``RequestSecurityTokenResponseCollection``: first a ``Passport.NET/tb`` response, then
    the ``wl.skype.com`` one, whose ``BinarySecurityToken`` is ``security_token``."""
    token = html.escape(security_token, quote=False)
    properties = (
        "<psf:credProperties>"
        '<psf:credProperty Name="MainBrandID">MSFT</psf:credProperty>'
        '<psf:credProperty Name="BrandIDList"></psf:credProperty>'
        '<psf:credProperty Name="IsWinLiveUser">true</psf:credProperty>'
        '<psf:credProperty Name="CID">0f3c2a9d7e6b4c1a</psf:credProperty>'
        "</psf:credProperties>"
        "<psf:extProperties>"
        '<psf:extProperty Name="ANON" Expiry="Wed, 30-Dec-2037 16:00:00 GMT" '
        'Domains="bing.com;atdmt.com" IgnoreRememberMe="false">'
        "A=0F3C2A9D7E6B4C1A&amp;E=1a2b&amp;W=1</psf:extProperty>"
        "</psf:extProperties>"
    )
    lifetime = (
        f"<wst:LifeTime><wsu:Created>{created}</wsu:Created>"
        f"<wsu:Expires>{expires}</wsu:Expires></wst:LifeTime>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<S:Envelope {_SOAP_NS}>"
        + _psf_header("0x48803", "0x0", created, properties)
        + f"<S:Body><wst:RequestSecurityTokenResponseCollection {_RSTR_NAMESPACES}>"
        "<wst:RequestSecurityTokenResponse>"
        "<wst:TokenType>urn:passport:legacy</wst:TokenType>"
        f"<wsp:AppliesTo {_WSA_NS}><wsa:EndpointReference>"
        "<wsa:Address>http://Passport.NET/tb</wsa:Address>"
        "</wsa:EndpointReference></wsp:AppliesTo>"
        f"{lifetime}"
        "<wst:RequestedSecurityToken>"
        '<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#" Id="BinaryDAToken0" '
        'Type="http://www.w3.org/2001/04/xmlenc#Element">'
        '<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#tripledes-cbc"/>'
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        "<ds:KeyName>http://Passport.NET/STS</ds:KeyName></ds:KeyInfo>"
        "<CipherData><CipherValue>Q2lwaGVyVmFsdWUtbm90LWEtdG9rZW4=</CipherValue></CipherData>"
        "</EncryptedData></wst:RequestedSecurityToken>"
        "<wst:RequestedTokenReference>"
        '<wsse:KeyIdentifier ValueType="urn:passport"/><wsse:Reference URI="#BinaryDAToken0"/>'
        "</wst:RequestedTokenReference>"
        "<wst:RequestedProofToken><wst:BinarySecret>cHJvb2Yta2V5LW5vdC1hLXRva2Vu"
        "</wst:BinarySecret></wst:RequestedProofToken>"
        "</wst:RequestSecurityTokenResponse>"
        "<wst:RequestSecurityTokenResponse>"
        "<wst:TokenType>urn:passport:compact</wst:TokenType>"
        f"<wsp:AppliesTo {_WSA_NS}><wsa:EndpointReference><wsa:Address>wl.skype.com</wsa:Address>"
        "</wsa:EndpointReference></wsp:AppliesTo>"
        f"{lifetime}"
        "<wst:RequestedSecurityToken>"
        f'<wsse:BinarySecurityToken Id="Compact1">{token}</wsse:BinarySecurityToken>'
        "</wst:RequestedSecurityToken>"
        "<wst:RequestedAttachedReference><wsse:SecurityTokenReference>"
        '<wsse:Reference URI="/zYJ9vK0eQQ2EOBwFjzTCY3iMk4="/>'
        "</wsse:SecurityTokenReference></wst:RequestedAttachedReference>"
        "<wst:RequestedUnattachedReference><wsse:SecurityTokenReference>"
        '<wsse:Reference URI="/zYJ9vK0eQQ2EOBwFjzTCY3iMk4="/>'
        "</wsse:SecurityTokenReference></wst:RequestedUnattachedReference>"
        "</wst:RequestSecurityTokenResponse>"
        "</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>"
    )


def soap_fault(code: str, text: str, server_time: str = "2024-03-05T14:00:00Z") -> str:
    """A SOAP 1.1 fault with ``faultcode`` and ``faultstring``, and the ``psf:pp`` header."""
    detail = ""
    if code == "wsse:FailedAuthentication":
        detail = (
            "<detail><psf:error><psf:value>0x80048821</psf:value>"
            "<psf:internalerror><psf:code>0x80041012</psf:code>"
            "<psf:text>The entered and stored passwords do not match.&#x000D;&#x000A;</psf:text>"
            "</psf:internalerror></psf:error></detail>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<S:Envelope {_SOAP_NS} {_PSF_NS}>"
        + _psf_header("0x80048800", "0x80048821", server_time)
        + "<S:Body><S:Fault>"
        f"<faultcode>{html.escape(code, quote=False)}</faultcode>"
        f"<faultstring>{html.escape(text, quote=False)}</faultstring>"
        f"{detail}"
        "</S:Fault></S:Body></S:Envelope>"
    )
