"""Task classes of the demo warehouse, one module per job.

Run order, as each class declares in ``depends_on`` by ETLTask name: ExtractWeather and
ExtractStocks, then BuildDimDate, then LoadFactWeather and LoadFactStocks, which share the
``warehouse`` lock, then SummarizeWarehouse. ``etl-runtime manifest`` builds the manifests in
examples/manifests from these declarations, except their config Secret and retries. FailingJob
fails on purpose after counting some rows, to show how failures are recorded.
"""
