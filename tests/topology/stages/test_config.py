"""topology.stages.config: the literal mode's choices, made once."""

from __future__ import annotations

from topology.settings import Settings
from topology.stages.config import stage_config


def test_pipeline_mode_uses_the_configured_sizes():
    cfg = stage_config(Settings.from_env({"STAGE_BATCH": "100", "SUBMIT_BATCH_SIZE": "250", "SAVE_BATCH_SIZE": "400",
                                          "SUBMIT_CONCURRENCY": "3", "SAVE_CONCURRENCY": "2"}))
    assert (cfg.per_message, cfg.submit_batch_size, cfg.save_chunk) == (100, 250, 400)
    assert (cfg.submit_concurrency, cfg.save_concurrency) == (3, 2)
    assert cfg.submit_take == 3 and cfg.save_take == 8 and not cfg.one_by_one and cfg.raw_reader


def test_literal_mode_is_one_applicant_per_message_call_and_put():
    cfg = stage_config(Settings.from_env({"TOPOLOGY_MODE": "literal"}))
    assert (cfg.per_message, cfg.submit_batch_size, cfg.save_chunk) == (1, 1, 1)
    assert (cfg.submit_concurrency, cfg.save_concurrency) == (1, 1)
    assert cfg.one_by_one and not cfg.raw_reader


def test_raw_consumer_faust_reads_applicants_raw_with_a_faust_agent():
    assert not stage_config(Settings.from_env({"RAW_CONSUMER": "faust"})).raw_reader
