"""The periodic reserve report: made from stored attestations, signed, rendered.

- `por.core.reserve_report`: the document (`por-reserve-report-v1`) and the pure rule
  that makes it from each day's end-of-day attestation (what `por verify` re-runs);
- `por.report.build`: find those attestations in the store, make and sign the report;
- `por.report.render`: HTML page and CSV; `por.report.pdf`: PDF (ReportLab, CJK fonts);
- `por.report.i18n`: the translations the public pages share (en, zh-HK, zh-CN).

docs/reports.md describes the format and how to verify a report.
"""

from por.report.build import end_of_day_attestations, make_report, sign_report

__all__ = ["end_of_day_attestations", "make_report", "sign_report"]
