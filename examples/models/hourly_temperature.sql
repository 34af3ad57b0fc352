-- Average temperature per sensor and hour, joined with the sensors table:
-- the seed talk's hourly aggregate. $start and $end bound the partition;
-- the input view `telemetry` is already limited to it.
SELECT
    $start::TIMESTAMPTZ            AS start_time,
    $end::TIMESTAMPTZ              AS end_time,
    s.id                           AS sensor_id,
    s.name                         AS sensor_name,
    avg(TRY_CAST(t.measurement.value AS DOUBLE)) AS avg_temp,
    count(*)                       AS readings
FROM telemetry t
JOIN sensors s ON t.sensor_id = s.id
WHERE t.measurement.kind = 'Temperature'
GROUP BY s.id, s.name
