"""The web page of `ltx2 serve` in a real headless Chromium (the system's, driven by Selenium): an error shown
next to its field, then a job submitted, watched to the end and played."""

import shutil

import pytest
from conftest import QUIET

pytestmark = QUIET

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no system Chromium (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_page_submits_a_job_watches_it_and_plays_it(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    # 400 steps of the tiny model: seconds, so that the page's once-a-second refresh sees the job before it ends.
    fields = {"prompt": "a cat in the sun", "size": "100x64", "num_frames": "9", "num_inference_steps": "400",
              "seed": "3"}
    for name, value in fields.items():
        browser.find_element(By.ID, name).send_keys(value)
    browser.find_element(By.ID, "submit").click()
    size_error = browser.find_element(By.CSS_SELECTOR, '.error[data-for="size"]')
    WebDriverWait(browser, 30).until(lambda _: "multiple of 32" in size_error.text)

    browser.find_element(By.ID, "size").clear()
    browser.find_element(By.ID, "size").send_keys("64x64")
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(lambda _: size_error.text == "")
    newest = "document.querySelector('#jobs .job')"
    statuses = set()

    def listed(_) -> bool:
        job = browser.execute_script(f"const job = {newest}; return job && [job.querySelector('.prompt').textContent, "
                                     "job.dataset.status]")
        if job and job[0] == fields["prompt"]:
            statuses.add(job[1])
        return bool(statuses)

    WebDriverWait(browser, 30, poll_frequency=0.1).until(listed)

    def playable(_) -> bool:
        statuses.add(browser.execute_script(f"return {newest}.dataset.status"))
        return browser.execute_script(f"const v = {newest}.querySelector('video'); return !!v && v.readyState >= 1")

    WebDriverWait(browser, 120, poll_frequency=0.1).until(playable)
    assert "completed" in statuses and statuses & {"queued", "in_progress"}  # the queue, live
    played = browser.execute_async_script(f"""
        const done = arguments[arguments.length - 1];
        const video = {newest}.querySelector('video');
        video.muted = true;
        video.play().then(() => setTimeout(() => done([video.currentTime, video.videoWidth, video.videoHeight,
                                                       video.duration]), 300),
                          error => done(String(error)));
    """)
    assert isinstance(played, list), played
    current_time, width, height, duration = played
    assert current_time > 0 and (width, height) == (64, 64) and duration == pytest.approx(9 / 24, abs=0.05)
    link = browser.execute_script(f"return {newest}.querySelector('a[download]').download")
    assert link.endswith(".mp4")
