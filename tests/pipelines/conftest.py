import pytest

from tiny import write_pipeline_folder


@pytest.fixture(scope="session")
def pipeline_folder(tmp_path_factory):
    """(folder, reference pipeline): a tiny dev-style pipeline the reference wrote with save_pretrained."""
    folder = tmp_path_factory.mktemp("tiny-ltx2")
    reference = write_pipeline_folder(
        folder,
        scheduler_config=dict(
            use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
            max_image_seq_len=4096, shift_terminal=0.1,
        ),
    )
    reference.set_progress_bar_config(disable=True)
    return folder, reference
