yt-dlp-async resume 1
size 6291456
etag "0-6291456-0"
last-modified Wed, 01 Jan 2020 00:00:00 GMT
range 0 835584
range 1585152 2392064
range 3153920 3964928
range 4722688 5537792
