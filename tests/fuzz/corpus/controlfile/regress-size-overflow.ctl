yt-dlp-async resume 1
size 461168601842738790422688
etag -
last-modified -
range 0 4997120
