"""Egress policy of provider base_urls (agent-config.md; api.md §10.7): what is refused at write time and at
connect time, the allow-list (names, addresses, networks) and the address actually connected to."""

import asyncio
import socket

import pytest

from core import egress


@pytest.fixture(autouse=True)
def _no_allow_list(settings):
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1",          # loopback
    "http://127.8.9.10/v1",              # loopback network
    "http://10.1.2.3/v1",                # private
    "http://172.16.0.5/v1",
    "http://192.168.1.1/v1",
    "http://100.64.0.1/v1",              # shared address space (carrier NAT)
    "http://169.254.169.254/latest",     # cloud metadata (link-local)
    "http://169.254.10.10/v1",           # link-local
    "http://0.0.0.0/v1",                 # unspecified
    "http://224.0.0.1/v1",               # multicast
    "http://[::1]:8000/v1",              # IPv6 loopback
    "http://[fe80::1]/v1",               # IPv6 link-local
    "http://[fc00::5]/v1",               # IPv6 unique-local
    "http://[::ffff:127.0.0.1]/v1",      # IPv4-mapped loopback
    "http://[::ffff:169.254.169.254]/v1",
    "http://[64:ff9b::a00:1]/v1",        # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]/v1",         # 6to4 of 127.0.0.1
    "http://[::]/v1",
    "http://localhost:11434/v1",         # local names
    "http://ollama.localhost/v1",
    "http://metadata.google.internal/computeMetadata",
    "http://printer.local/v1",
])
def test_non_public_hosts_are_refused_at_write_time(url):
    assert egress.write_time_refusal(url) is not None


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "https://8.8.8.8/v1", "http://[2606:4700::1111]/v1",
                                 "https://api.deepseek.com", ""])
def test_public_hosts_are_accepted(url):
    assert egress.write_time_refusal(url) is None


@pytest.mark.parametrize("url", ["https://user:pass@api.openai.com/v1", "https://token@api.openai.com/v1",
                                 "https://:secret@api.openai.com/v1"])
def test_credentials_in_url_are_refused(url):
    assert "credentials" in egress.write_time_refusal(url)


@pytest.mark.parametrize("allowed, url", [
    (["127.0.0.1"], "http://127.0.0.1:8000/v1"),
    (["10.0.0.0/8"], "http://10.20.30.40/v1"),
    (["::1"], "http://[::1]:8000/v1"),
    (["localhost"], "http://localhost:11434/v1"),
    (["LocalHost"], "http://localhost:11434/v1"),
    (["fd00::/8"], "http://[fd12::1]/v1"),
])
def test_allow_list(settings, allowed, url):
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = allowed
    assert egress.write_time_refusal(url) is None


def test_allow_list_does_not_open_other_hosts(settings):
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.1", "10.0.0.0/24"]
    assert egress.write_time_refusal("http://10.0.1.1/v1") is not None
    assert egress.write_time_refusal("http://169.254.169.254/") is not None
    assert egress.write_time_refusal("http://localhost/v1") is not None


def _resolve(host, port=80):
    return asyncio.run(egress.resolve_checked(host, port))


def _fake_dns(monkeypatch, answers: dict[str, list[str]]):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                    for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_loopback_is_refused_at_connect_time():
    with pytest.raises(egress.EgressRefused):
        _resolve("localhost")


def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    _fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(egress.EgressRefused):
        _resolve("mixed.example")


def test_connect_time_returns_the_checked_address(monkeypatch):
    _fake_dns(monkeypatch, {"llm.example": ["93.184.216.34"]})
    assert _resolve("llm.example") == "93.184.216.34"


def test_ipv6_answers_are_checked(monkeypatch):
    _fake_dns(monkeypatch, {"six.example": ["::1"], "mapped.example": ["::ffff:10.0.0.1"]})
    for host in ("six.example", "mapped.example"):
        with pytest.raises(egress.EgressRefused):
            _resolve(host)


def test_allowed_name_and_network_at_connect_time(settings, monkeypatch):
    _fake_dns(monkeypatch, {"onprem.example": ["10.1.1.1"]})
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["onprem.example"]
    assert _resolve("onprem.example") == "10.1.1.1"
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["10.1.0.0/16"]
    assert _resolve("onprem.example") == "10.1.1.1"
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["10.2.0.0/16"]
    with pytest.raises(egress.EgressRefused):
        _resolve("onprem.example")
