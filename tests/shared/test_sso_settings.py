"""The single sign-on settings: read from the environment, each mistake a one-line
ConfigError naming its variable, the client secret never shown."""

from __future__ import annotations

import ipaddress

import pytest

from shared.errors import ConfigError
from shared.settings import Settings
from shared.sso_settings import OidcRole, provider_name

OIDC = {
    "PINGURA_PUBLIC_URL": "https://pingura.example.com",
    "PINGURA_OIDC_ISSUER": "https://sso.example.com/realms/ops",
    "PINGURA_OIDC_CLIENT_ID": "pingura",
    "PINGURA_OIDC_CLIENT_SECRET": "the-very-secret-client-secret",
}


def test_oidc_settings_are_read_and_the_roles_parsed():
    settings = Settings.from_env(
        {**OIDC, "PINGURA_OIDC_ROLES": " ops=prj_1:admin, devs=prj_1:member,/team/a=prj_2:viewer "}
    )
    assert settings.oidc_roles == (
        OidcRole("ops", "prj_1", "admin"),
        OidcRole("devs", "prj_1", "member"),
        OidcRole("/team/a", "prj_2", "viewer"),
    )
    assert settings.oidc_scopes == "openid email profile" and settings.oidc_groups_claim == "groups"
    assert "the-very-secret-client-secret" not in repr(settings)
    assert provider_name(settings) == "sso.example.com"
    assert provider_name(settings.replace(oidc_provider_name=" Keycloak ")) == "Keycloak"
    assert Settings.from_env({}).oidc_issuer is None and Settings.from_env({}).trusted_header is None  # off


def test_the_trusted_header_is_read_with_its_proxies():
    settings = Settings.from_env(
        {
            "PINGURA_TRUSTED_HEADER": "X-Forwarded-Email",
            "PINGURA_TRUSTED_HEADER_PROXIES": "10.0.0.5, fd00::/64",
        }
    )
    assert settings.trusted_header_proxies == (
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("fd00::/64"),
    )


@pytest.mark.parametrize("env, says", [
    ({"PINGURA_OIDC_ROLES": "ops=prj_1:admin"}, "PINGURA_OIDC_ISSUER: required with"),
    ({**OIDC, "PINGURA_OIDC_ISSUER": "http://sso.example.com"}, "PINGURA_OIDC_ISSUER: must be https"),
    ({**OIDC, "PINGURA_OIDC_ISSUER": "https://sso.example.com/?realm=x"}, "PINGURA_OIDC_ISSUER: a URL such as"),
    ({**OIDC, "PINGURA_OIDC_ISSUER": "sso.example.com"}, "PINGURA_OIDC_ISSUER: a URL such as"),
    ({**OIDC, "PINGURA_OIDC_CLIENT_ID": ""}, "PINGURA_OIDC_CLIENT_ID: required with PINGURA_OIDC_ISSUER"),
    ({**OIDC, "PINGURA_PUBLIC_URL": ""}, "PINGURA_PUBLIC_URL: required with PINGURA_OIDC_ISSUER (the redirect URI"),
    ({**OIDC, "PINGURA_OIDC_SCOPES": "email profile"}, "PINGURA_OIDC_SCOPES: must include openid"),
    ({**OIDC, "PINGURA_OIDC_GROUPS_CLAIM": " "}, "PINGURA_OIDC_GROUPS_CLAIM"),
    ({**OIDC, "PINGURA_OIDC_ROLES": "ops=prj_1"}, "PINGURA_OIDC_ROLES: 'ops=prj_1' is not group=project_id:role"),
    ({**OIDC, "PINGURA_OIDC_ROLES": "ops=prj_1:boss"}, "PINGURA_OIDC_ROLES: role 'boss' of group 'ops': one of"),
    ({**OIDC, "PINGURA_OIDC_ROLES": "ops=prj 1:admin"}, "PINGURA_OIDC_ROLES: 'prj 1' is not a project id"),
    ({**OIDC, "PINGURA_OIDC_ROLES": "ops=p:admin,ops=p:viewer"}, "group 'ops' is mapped twice for project p"),
    ({"PINGURA_TRUSTED_HEADER": "X-Forwarded-Email"}, "PINGURA_TRUSTED_HEADER_PROXIES: required with"),
    ({"PINGURA_TRUSTED_HEADER_PROXIES": "10.0.0.5"}, "PINGURA_TRUSTED_HEADER: required with"),
    ({"PINGURA_TRUSTED_HEADER": "X Email", "PINGURA_TRUSTED_HEADER_PROXIES": "10.0.0.5"}, "a header name"),
    ({"PINGURA_TRUSTED_HEADER": "X-Email", "PINGURA_TRUSTED_HEADER_PROXIES": "::/0"}, "not every address"),
    ({"PINGURA_TRUSTED_HEADER": "X-Email", "PINGURA_TRUSTED_HEADER_PROXIES": "10.0.0.300"}, "TRUSTED_HEADER_PROXIES"),
])  # fmt: skip
def test_each_mistake_is_one_line_naming_its_setting(env, says):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    message = str(refused.value)
    assert says in message and "\n" not in message
    assert "the-very-secret-client-secret" not in message


def test_http_issuers_are_for_loopback_only():
    for issuer in ("http://127.0.0.1:5556", "http://localhost:5556/realms/x", "http://[::1]:5556"):
        assert Settings.from_env({**OIDC, "PINGURA_OIDC_ISSUER": issuer}).oidc_issuer == issuer
