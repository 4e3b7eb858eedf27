"""Drive the explorer page in headless Chromium (Selenium + Debian's chromium-driver).

Used by the browser test (screenshots under its tmp_path) and by `benchmarks/serve.py --screenshot`
(the README's screenshot and the page-load figure), so both run the same steps.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HOW_TO_ENABLE = ("no headless Chromium: install it with `apt-get install -y chromium chromium-driver` "
                 "(as .ci/run does) to run the browser test")
BAD_RADIUS = "-1"
WAIT_S = 60


def browser_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return HOW_TO_ENABLE
    return None


def make_driver(width: int = 1400, height: int = 1800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    service = Service(CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else shutil.which("chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


def _api(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.loads(r.read())


def wait_ready(driver) -> dict:
    """Wait for the page's marker that the diagram and the first table page are drawn; the time from
    navigation start to that marker (the page's own performance.now()) and the points on the diagram."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    return driver.execute_script("return {ready_ms: Number(document.body.dataset.readyMs), "
                                 "points: document.querySelectorAll('#hz circle.pt').length}")


def explore(base: str, out_dir: Path, planet: str = "Kepler-442 b", driver=None) -> dict:
    """Load the page, search `planet`, open it, compare the panel with the API, submit a bad radius.

    Saves page.png, planet.png and form-error.png under out_dir; returns what it saw.
    """
    from urllib.parse import quote

    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    own = driver is None
    driver = driver or make_driver()
    # the table is re-rendered as the search debounces: an element found a moment ago may be replaced
    wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    seen: dict = {}
    try:
        driver.get(base + "/")
        seen.update(wait_ready(driver))
        seen["solar_system_marks"] = len(driver.find_elements(By.CSS_SELECTOR, "#hz rect.solar"))
        driver.save_screenshot(str(out_dir / "page.png"))

        box = driver.find_element(By.ID, "search")
        box.clear()
        box.send_keys(planet)
        row = f'#planet-table tbody tr[data-name="{planet}"]'
        wait.until(lambda d: [r.get_attribute("data-name") for r in
                              d.find_elements(By.CSS_SELECTOR, "#planet-table tbody tr")] == [planet])
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, row).click() or True)
        wait.until(EC.text_to_be_present_in_element((By.ID, "panel-name"), planet))
        seen["panel_name"] = driver.find_element(By.ID, "panel-name").text
        seen["panel"] = {}
        for cell in driver.find_elements(By.CSS_SELECTOR, "#panel-probs td[data-key], #panel-weights td[data-key]"):
            seen["panel"][cell.get_attribute("data-key")] = {
                "value": float(cell.get_attribute("data-value")), "text": cell.text,
                "spread": float(cell.get_attribute("data-spread")) if cell.get_attribute("data-spread") else None}
        seen["api"] = _api(base, "/api/planets/" + quote(planet))
        seen["map_drawn"] = driver.execute_script(
            "const c = document.getElementById('map'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (d.length / 4);")
        driver.save_screenshot(str(out_dir / "planet.png"))

        radius = driver.find_element(By.CSS_SELECTOR, '#predict-form input[name="planet_radius_rjup"]')
        radius.clear()
        radius.send_keys(BAD_RADIUS)
        driver.find_element(By.ID, "predict-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "predict-error").text.strip() != "")
        seen["form_error"] = driver.find_element(By.ID, "predict-error").text
        driver.execute_script("document.getElementById('form-section').scrollIntoView()")
        driver.save_screenshot(str(out_dir / "form-error.png"))
        seen["console_errors"] = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        if own:
            driver.quit()
    return seen
