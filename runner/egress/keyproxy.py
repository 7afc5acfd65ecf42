"""The key routes (runner/egress/keys.py) as Squid configuration: the run's egress proxy also runs
as a reverse proxy (accelerator) for each model API, on one port per route.

For route N on port P to upstream U:

    http_port P accel defaultsite=U name=keyN            a reverse-proxy port
    cache_peer U.host parent U.port 0 no-query no-digest originserver name=keyN forceddomain=U [tls tls-cafile=CA]
    cache_peer_access keyN allow keyN_port / deny all    the peer serves only its own port
    never_direct allow keyN_port                         nothing on that port goes anywhere else
    request_header_access H deny key_ports               for every key header H (KEY_HEADERS)
    request_header_add HEADER "VALUE" keyN_port          the real key, on the way out only

and, first among the access rules: a port's requests are allowed only from the subnets of the
sandboxes of named agents calling that API (`clients`), and no request reaching the proxy any other way may go to a
key port (a forward request to the proxy's own key port would otherwise come back from the proxy's
own address and get the key). The key is written only into this text, which the proxy receives as
a file (sandbox/network.py), never through its environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runner.egress.keys import KEY_HEADERS, KeyRoute

CA_FILE = "/etc/squid/pipe-ca.pem"  # where the person's CA bundle is put in the proxy


def _quoted(value: str) -> str:
    """`value` as a squid.conf quoted string: `%` doubled (no logformat macro), no `"` or `\\`
    (keys.key_routes refused them)."""
    assert '"' not in value and "\\" not in value and "\n" not in value
    return '"' + value.replace("%", "%%") + '"'


def key_ports_config(
    routes: Sequence[KeyRoute], clients: Mapping[str, Sequence[str]], ca_file: str | None
) -> list[str]:
    """Squid directives for `routes` (see the module docstring), to be placed before every other
    `http_access` line. `clients` maps a provider name to the subnets (CIDR) whose sandboxes may
    use its route (a provider missing: nobody may); `ca_file`, when given, is the CA bundle to
    verify TLS upstreams with (besides the image's trusted CAs). Empty when there are no routes."""
    if not routes:
        return []
    names = [f"key{number}" for number in range(len(routes))]
    lines = [
        f"acl key_ports myportname {' '.join(names)}",
        f"acl key_port_numbers port {' '.join(str(route.port) for route in routes)}",
    ]
    for name, route in zip(names, routes, strict=True):
        upstream = route.upstream
        lines.append(f"http_port {route.port} accel defaultsite={upstream.address} name={name}")
        peer = (
            f"cache_peer {upstream.host} parent {upstream.port} 0 no-query no-digest originserver "
            f"name={name} forceddomain={upstream.address}"
        )
        if upstream.tls:
            peer += " tls" + (f" tls-cafile={ca_file}" if ca_file else "")
        lines += [
            peer,
            f"acl {name}_port myportname {name}",
            f"cache_peer_access {name} allow {name}_port",
            f"cache_peer_access {name} deny all",
            f"never_direct allow {name}_port",
        ]
    lines += [f"request_header_access {header} deny key_ports" for header in KEY_HEADERS]
    for name, route in zip(names, routes, strict=True):
        value = route.provider.value.format(key=route.key)
        lines.append(f"request_header_add {route.provider.header} {_quoted(value)} {name}_port")
    for name, route in zip(names, routes, strict=True):
        subnets = clients.get(route.provider.name) or ()
        if subnets:
            lines.append(f"acl {name}_clients src {' '.join(subnets)}")
            lines.append(f"http_access allow {name}_port {name}_clients")
    lines += ["http_access deny key_ports", "http_access deny key_port_numbers"]
    return lines
