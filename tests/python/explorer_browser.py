"""Headless Chromium for the explorer's tests and bench: Debian's chromium
and chromium-driver, driven by selenium, with the browser console kept."""
import os

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("TRACEFOLD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TRACEFOLD_CHROMEDRIVER", "/usr/bin/chromedriver")


def chromium(width=1400, height=1000):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium would otherwise try to download one.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def console_errors(driver):
    """SEVERE entries of the browser console since the last call."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
