"""Task classes of the demo warehouse, one module per job.

Run order, as each class declares in ``depends_on``: ExtractWeather and ExtractStocks, then
BuildDimDate, then LoadFactWeather and LoadFactStocks, then SummarizeWarehouse. FailingJob
fails on purpose after counting some rows, to show how failures are recorded.
"""
