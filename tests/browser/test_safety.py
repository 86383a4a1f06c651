"""The dashboard's safety in a real browser: actions need the CSRF token, a non-loopback
address needs ``[daemon] dashboard_token``, a wrong token gets 401 and the login form with
the right one lets the browser in (an HttpOnly, SameSite=Strict cookie); bound to loopback
it needs no login, even with a token set."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.dashboard import Dashboard, Shop, sellable

TOKEN = "browser-test-token-5d1f"


def test_post_without_csrf_token_is_refused(
    page: Page, example_dashboard: Dashboard, example_shop: Shop
) -> None:
    page.goto(example_dashboard.url + "/reorder")
    form = {"sku": "GIFT-SET-COFFEE", "warehouse": "main", "quantity": "1"}
    refused = page.request.post(example_dashboard.url + "/actions/build", form=form)
    assert refused.status == 403, refused.text()
    forged = page.request.post(
        example_dashboard.url + "/actions/build", form={**form, "csrf_token": "0" * 64}
    )
    assert forged.status == 403, forged.text()
    retry = page.request.post(example_dashboard.url + "/actions/retry-held")
    assert retry.status == 403, retry.text()
    assert example_shop.position("GIFT-SET-COFFEE", "main")["prepackaged"]["on_hand"] == 10


def test_non_loopback_bind_without_token_refuses_to_start(example_shop: Shop) -> None:
    result = sellable(example_shop.config, "dashboard", "--listen", "0.0.0.0:0", expect=2)
    assert "dashboard_token" in result.stderr, result.stderr


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Dashboard:
    shop = Shop.create(
        tmp_path_factory.mktemp("guarded"), f'\n[daemon]\ndashboard_token = "{TOKEN}"\n'
    )
    with Dashboard(shop, listen="0.0.0.0:0") as running:
        yield running


def test_wrong_token_gets_401_and_the_login_form_lets_in(
    context: BrowserContext, guarded: Dashboard
) -> None:
    page = context.new_page()
    api = context.request
    wrong = api.get(guarded.url + "/api/stock", headers={"Authorization": "Bearer wrong"})
    assert wrong.status == 401
    right = api.get(guarded.url + "/api/stock", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status == 200

    response = page.goto(guarded.url + "/")
    assert response is not None and response.status == 401
    expect(page.locator("table#stock")).to_have_count(0)
    page.get_by_label("Dashboard token").fill("not-the-token")
    with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 401
    expect(page.locator("p[role=alert]")).to_be_visible()
    expect(page.locator("table#stock")).to_have_count(0)

    page.get_by_label("Dashboard token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator('table#stock tr[data-sku="GIFT-SET-COFFEE"]')).to_have_count(2)
    (cookie,) = [c for c in context.cookies() if c["name"] == "sellable_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    assert page.goto(guarded.url + "/orders").status == 200  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def loopback_with_token(tmp_path_factory: pytest.TempPathFactory) -> Dashboard:
    shop = Shop.create(
        tmp_path_factory.mktemp("loopback"), f'\n[daemon]\ndashboard_token = "{TOKEN}"\n'
    )
    with Dashboard(shop) as running:  # 127.0.0.1
        yield running


def test_loopback_bind_needs_no_login_even_with_a_token(
    context: BrowserContext, loopback_with_token: Dashboard
) -> None:
    page = context.new_page()
    response = page.goto(loopback_with_token.url + "/")
    assert response is not None and response.status == 200
    expect(page.locator('table#stock tr[data-sku="GIFT-SET-COFFEE"]')).to_have_count(2)
    expect(page.get_by_label("Dashboard token")).to_have_count(0)
    assert [c for c in context.cookies() if c["name"] == "sellable_session"] == []
    # Actions work from the page (its form carries the CSRF token) and nowhere else.
    page.goto(loopback_with_token.url + "/orders")
    page.get_by_role("button", name="Retry held lines").click()
    expect(page.locator("#action-result [role=status]")).to_contain_text("held lines retried")
    refused = context.request.post(loopback_with_token.url + "/actions/retry-held")
    assert refused.status == 403
    api = context.request
    bearer = api.get(
        loopback_with_token.url + "/api/stock", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert bearer.status == 200
    wrong = api.get(loopback_with_token.url + "/api/stock", headers={"Authorization": "Bearer x"})
    assert wrong.status == 401
